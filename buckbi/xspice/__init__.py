"""buckbi's XSPICE code model: a feed-forward network as one ngspice element (``buckbi_mlp``).

The exported subcircuit of VCCS and behavioural sources is what LTspice and every SPICE reads; ngspice loads
all of its ~1200 elements at every Newton iteration, ~80 % of an episode with the network in the loop. The
code model computes the same float64 forward pass (and its Jacobian) in C, ~5x faster per episode. It is
built from the Debian source of the installed ngspice by ``python -m buckbi.xspice build``
(``buckbi.sh`` does it), and used only where it is installed and current.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from functools import lru_cache
from pathlib import Path

SOURCES = Path(__file__).resolve().parent / "buckbi_mlp"
MODEL_NAME = "buckbi_mlp"
ENV_PATH = "BUCKBI_CODEMODEL"  # a built buckbi.cm elsewhere (its .stamp beside it)
# The configuration Debian's ngspice was built with (debian/rules: --enable-xspice --enable-cider
# --enable-openmp --enable-pss; S-parameter analysis is on by default). These macros change the layout of the
# structures a code model shares with the simulator; the self-test catches a mismatch before installing.
CONFIG_H = """\
#define XSPICE 1
#define CIDER 1
#define RFSPICE 1
#define WITH_PSS
#define USE_OMP 1
#define STDC_HEADERS 1
#define HAVE_STDINT_H 1
#define HAVE_STRING_H 1
#define HAVE_STDLIB_H 1
#define HAVE_UNISTD_H 1
#define HAVE_LIMITS_H 1
#define HAVE_FLOAT_H 1
#define HAVE_ISNAN 1
#define HAVE_ISINF 1
#define HAVE_DECL_ISNAN 1
#define HAVE_DECL_ISINF 1
"""
BUILD_HINT = ("build it with 'python -m buckbi.xspice build' (./buckbi.sh does; needs gcc, bison and flex, "
              "and fetches ngspice's Debian source once)")


class CodeModelError(RuntimeError):
    """The code model is missing, stale, or cannot be built here."""


def install_dirs() -> list[Path]:
    """Where the build puts the code model: beside the environment, else the user's cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [Path(sys.prefix) / "share" / "buckbi" / "xspice", cache / "buckbi" / "xspice"]


def ngspice_version(executable: str | None = None) -> str | None:
    """``ngspice-39``-style version of the installed ngspice, None without one."""
    return _version(executable or shutil.which("ngspice"))


@lru_cache(maxsize=None)  # asked once per episode batch and per exported file: one subprocess per executable
def _version(exe: str | None) -> str | None:
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for word in out.split():
        if word.startswith("ngspice-"):
            return word
    return None


def stamp_text(version: str) -> str:
    """What a build for ``version`` of these sources writes beside the code model."""
    h = hashlib.sha256()
    for f in sorted(SOURCES.iterdir()):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    h.update(CONFIG_H.encode())
    return f"{version} {h.hexdigest()}\n"


@lru_cache(maxsize=None)
def _find(version: str | None) -> Path | None:
    if version is None:
        return None
    want = stamp_text(version)
    candidates = [Path(os.environ[ENV_PATH])] if os.environ.get(ENV_PATH) else []
    candidates += [d / "buckbi.cm" for d in install_dirs()]
    for cm in candidates:
        stamp = cm.with_suffix(".stamp")
        if cm.is_file() and stamp.is_file() and stamp.read_text() == want:
            return cm
    return None


def codemodel_path(executable: str | None = None) -> Path | None:
    """The built code model for the installed ngspice and these sources, or None."""
    return _find(ngspice_version(executable))


def require_codemodel(executable: str | None = None) -> Path:
    """The code model's path, or a CodeModelError saying how to build it."""
    path = codemodel_path(executable)
    if path is None:
        version = ngspice_version(executable)
        what = "ngspice is not installed" if version is None else f"no current build for {version}"
        raise CodeModelError(f"buckbi's XSPICE network element is not available ({what}): {BUILD_HINT}.")
    return path


_warned = False


def warn_unavailable() -> None:
    """Say once per process that the network runs as the (slower) portable subcircuit."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("buckbi's XSPICE network element is not built: the network runs in ngspice as the "
                      f"portable subcircuit, ~5x slower with the network in the loop; {BUILD_HINT}.",
                      RuntimeWarning, stacklevel=3)
