"""Build buckbi's code model against the installed ngspice's Debian source: ``python -m buckbi.xspice build``.

Debian ships ngspice's own code models but not the toolchain to make new ones (cmpp and the headers), so the
build fetches the source package of the same version from the Debian archive once (pinned by its sha256),
builds cmpp from it, runs it on ``buckbi_mlp/`` and links ``buckbi.cm``. Before it installs the result it
checks it: the network of every activation through ngspice's operating point against PyTorch.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from . import CONFIG_H, SOURCES, CodeModelError, _find, install_dirs, ngspice_version, stamp_text

# ngspice version -> (the Debian source tarball, its sha256 from the package's .dsc)
DEBIAN_SOURCES = {
    "ngspice-39": ("http://deb.debian.org/debian/pool/main/n/ngspice/ngspice_39.3+ds.orig.tar.gz",
                   "d2a934d057c66364d96f451dd7845e38109dde0e0d57287a6b33a525c7289647"),
}
ENV_SOURCE = "BUCKBI_NGSPICE_SOURCE"  # a local copy of the tarball (no download)

NEEDED = ("/src/include/ngspice/", "/src/maths/dense/dense.h", "/src/xspice/cmpp/", "/src/xspice/icm/dlmain.c", "/src/misc/dstring.c")
SELF_TEST_TOL = 1e-12


class UnsupportedNgspice(CodeModelError):
    """The installed ngspice is not one whose source and configuration buckbi knows."""


def _tools() -> dict[str, str]:
    found = {t: shutil.which(t) for t in (os.environ.get("CC", "gcc"), "bison", "flex")}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        raise CodeModelError(f"building the code model needs {', '.join(missing)}: "
                             "sudo apt-get install -y gcc bison flex")
    return found


def source_tarball(version: str, cache: Path | None = None) -> Path:
    """The Debian source of ``version``: $BUCKBI_NGSPICE_SOURCE, the cached copy, or downloaded once."""
    url, sha = DEBIAN_SOURCES[version]
    given = os.environ.get(ENV_SOURCE)
    path = Path(given) if given else (cache or install_dirs()[-1].parent / "src") / url.rsplit("/", 1)[1]
    if not path.is_file():
        if given:
            raise CodeModelError(f"{ENV_SOURCE}={given} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as fh:
                shutil.copyfileobj(r, fh)
        except OSError as err:
            raise CodeModelError(f"could not fetch ngspice's Debian source {url}: {err}; set {ENV_SOURCE} to "
                                 "a local copy") from err
        os.replace(tmp, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise CodeModelError(f"{path} has sha256 {digest}, expected {sha} (Debian's .dsc): delete it and rebuild")
    return path


def _run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise CodeModelError(f"{' '.join(cmd[:2])} failed in {cwd}:\n{(res.stdout + res.stderr)[-2000:]}")


def compile_codemodel(tarball: Path, work: Path) -> Path:
    """cmpp from the source, then ``buckbi.cm`` from ``buckbi_mlp/``; returns the library's path."""
    cc, bison, flex = _tools().values()
    with tarfile.open(tarball) as tf:
        members = [m for m in tf.getmembers() if any(n in m.name for n in NEEDED)]
        try:
            tf.extractall(work / "src", members=members, filter="data")
        except TypeError:  # Python before 3.10.12 / 3.11.4: no extraction filters (the tarball's sha256 is checked)
            tf.extractall(work / "src", members=members)
    root = next((work / "src").iterdir())
    inc = work / "include" / "ngspice"
    inc.mkdir(parents=True)
    (inc / "config.h").write_text(CONFIG_H)
    cmpp_src, tools = root / "src" / "xspice" / "cmpp", work / "cmpp"
    tools.mkdir()
    for y in ("ifs_yacc", "mod_yacc"):
        _run([bison, "-d", "-o", str(tools / f"{y}.c"), f"{y}.y"], cmpp_src)
    for lx in ("ifs_lex", "mod_lex"):
        _run([flex, "-o", str(tools / f"{lx}.c"), f"{lx}.l"], cmpp_src)
    cfiles = [str(p) for p in sorted(cmpp_src.glob("*.c")) + sorted(tools.glob("*.c"))]
    _run([cc, "-O1", "-w", f"-I{cmpp_src}", f"-I{tools}", "-o", str(tools / "cmpp"), *cfiles], work)
    cmpp = str(tools / "cmpp")
    lib = work / "cm"
    shutil.copytree(SOURCES, lib / SOURCES.name)
    (lib / "modpath.lst").write_text(SOURCES.name + "\n")
    (lib / "udnpath.lst").write_text("")
    _run([cmpp, "-lst"], lib)
    _run([cmpp, "-ifs"], lib / SOURCES.name)
    _run([cmpp, "-mod", "cfunc.mod"], lib / SOURCES.name)
    flags = ["-O2", "-fPIC", "-fvisibility=hidden", f"-I{work / 'include'}", f"-I{root / 'src' / 'include'}",
             f"-I{lib}"]
    srcs = [root / "src" / "xspice" / "icm" / "dlmain.c", root / "src" / "misc" / "dstring.c",
            lib / SOURCES.name / "cfunc.c", lib / SOURCES.name / "ifspec.c"]
    objs = []
    for k, src in enumerate(srcs):
        obj = lib / f"o{k}.o"
        _run([cc, *flags, "-c", str(src), "-o", str(obj)], lib)
        objs.append(str(obj))
    out = lib / "buckbi.cm"
    _run([cc, "-shared", "-fPIC", *objs, "-lm", "-o", str(out)], lib)
    return out


def self_test(cm: Path) -> float:
    """Largest |ngspice - PyTorch| over a network with every activation at 32 input rows; raises if off."""
    import numpy as np
    import torch
    from torch import nn

    from ..export import step_reference
    from ..export.verify import spice_forward

    torch.manual_seed(0)
    acts = [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.SiLU(), nn.Hardtanh(-0.5, 0.7), nn.Hardsigmoid(),
            nn.LeakyReLU(0.03), nn.ELU(0.8), nn.Softplus(2.0, 3.0)]
    layers: list[nn.Module] = []
    for a in acts:
        layers += [nn.Linear(6 if layers else 5, 6), a]
    net = nn.Sequential(*layers, nn.Linear(6, 2)).double().eval()
    x = np.random.default_rng(0).uniform(-3, 3, (32, 5))
    try:
        got = spice_forward(net, x, structure="xspice", codemodel=cm)
    except Exception as err:
        raise CodeModelError(f"the built code model failed its check in ngspice: {err}") from err
    dev = float(np.max(np.abs(got - step_reference(net, x))))
    if not dev <= SELF_TEST_TOL:
        raise CodeModelError(f"the built code model is {dev:.3g} from PyTorch (allowed {SELF_TEST_TOL})")
    return dev


def build(force: bool = False) -> Path:
    """Build, check and install the code model for the installed ngspice; a current build is kept."""
    version = ngspice_version()
    if version is None:
        raise UnsupportedNgspice("ngspice is not installed: sudo apt-get install -y ngspice")
    have = _find(version)
    if have is not None and not force:
        return have
    if version not in DEBIAN_SOURCES:
        raise UnsupportedNgspice(f"buckbi builds its code model from Debian's ngspice source ({', '.join(DEBIAN_SOURCES)}); "
                             f"{version} is installed, so the network runs as the portable subcircuit")
    tarball = source_tarball(version)
    with tempfile.TemporaryDirectory(prefix="buckbi-cm-") as tmp:
        built = compile_codemodel(tarball, Path(tmp))
        self_test(built)
        for d in install_dirs():
            try:
                d.mkdir(parents=True, exist_ok=True)
                part = d / "buckbi.cm.part"
                shutil.copy2(built, part)
                os.replace(part, d / "buckbi.cm")
                (d / "buckbi.stamp").write_text(stamp_text(version))
            except OSError:
                continue
            _find.cache_clear()
            return d / "buckbi.cm"
    raise CodeModelError(f"no writable place for the code model among {[str(d) for d in install_dirs()]}")
