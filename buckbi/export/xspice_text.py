"""The network as the real-vector program of buckbi's XSPICE code model (``buckbi_mlp``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..nn.activations import ACTIVATIONS, spice_number as num
from .graph import Activation, Affine, ExportError, Op


def loadable_codemodel(path: str | Path) -> str:
    """A path ngspice's ``pre_codemodel`` can load: ngspice lowercases the netlist's lines (quotes do not keep the
    case), so a code model under a folder with capitals is reached through a link in the temporary folder, named
    after the file's own path. A path with spaces, or no lowercase temporary folder, is refused with the fix."""
    import hashlib
    import os
    import tempfile
    text = str(path)
    if any(ch.isspace() for ch in text):
        raise ExportError(f"ngspice's pre_codemodel cannot load a path with spaces: {text!r}; install buckbi (its "
                          ".venv) under a folder without spaces")
    if text == text.lower():
        return text
    tmp = tempfile.gettempdir()
    if tmp != tmp.lower() or any(ch.isspace() for ch in tmp):
        raise ExportError(f"ngspice lowercases the code model's path {text!r} and cannot open it; install buckbi under "
                          f"a folder without capitals, or set TMPDIR to one (buckbi links the code model there)")
    link = Path(tmp) / f"buckbi-codemodel-{hashlib.sha1(text.encode()).hexdigest()[:12]}" / Path(text).name.lower()
    if not (link.is_symlink() and os.readlink(link) == text):
        link.parent.mkdir(parents=True, exist_ok=True)
        spare = link.with_name(f".{link.name}.{os.getpid()}")
        spare.unlink(missing_ok=True)
        spare.symlink_to(text)
        os.replace(spare, link)  # atomic: parallel episodes never see a half-made link
    return str(link)

OP_AFFINE, OP_ACTIVATION = 1, 2
VALUES_PER_LINE = 8


def program(ops: list[Op]) -> list[float]:
    """Flatten affine and activation steps into the code model's ``prog`` vector."""
    prog: list[float] = []
    for op in ops:
        if isinstance(op, Affine):
            n_out, n_in = op.weight.shape
            prog += [OP_AFFINE, n_in, n_out, *np.asarray(op.weight, float).ravel(), *np.asarray(op.bias, float)]
        elif isinstance(op, Activation):
            kind = ACTIVATIONS[op.kind]  # its id is cfunc.mod's enum value (checked by a test)
            params = [float(op.params[n]) for n in kind.params]
            prog += [OP_ACTIVATION, kind.id, *params, *[0.0] * (2 - len(params))]
        else:
            raise ExportError(f"the XSPICE network element runs feed-forward networks only, not {type(op).__name__}; "
                              "export with structure='fast'")
    return prog


def model_lines(name: str, prog: list[float]) -> list[str]:
    """``.model`` card of ``buckbi_mlp`` with ``prog`` spread over continuation lines."""
    values = [num(v) for v in prog]
    rows = [" ".join(values[i:i + VALUES_PER_LINE]) for i in range(0, len(values), VALUES_PER_LINE)]
    return [f".model {name} buckbi_mlp(prog=[", *(f"+ {r}" for r in rows), "+ ])"]


def render_xspice(ops: list[Op], *, subckt_name: str, input_names: list[str], output_names: list[str],
                  header: list[str], codemodel: str | Path) -> str:
    """The subcircuit as one ``buckbi_mlp`` element, with the control lines that load the code model.

    ``pre_codemodel`` loads it before ngspice parses the circuit; ``xtrtol=7`` keeps ngspice's default
    truncation tolerance, which the mere presence of an A element would lower to 1 (7x more time points
    wherever the time step is set by truncation error, for the same circuit).
    """
    codemodel = loadable_codemodel(codemodel)
    model = f"{subckt_name}_net"
    if not ops:  # an identity network: the code model needs at least one step
        n = len(input_names)
        ops = [Affine(np.eye(n), np.zeros(n), source="Identity")]
    return "\n".join([
        *header,
        "* one buckbi_mlp element: ngspice with buckbi's code model only (python -m buckbi.xspice build)",
        ".control", f"pre_codemodel {codemodel}", "set xtrtol=7", ".endc",
        f".subckt {subckt_name} {' '.join([*input_names, *output_names])}",
        f"A{model} [{' '.join(input_names)}] [{' '.join(output_names)}] {model}",
        *model_lines(model, program(ops)),
        f".ends {subckt_name}", ""])
