"""The exported network evaluated in SPICE on given input rows: one DC sweep, one row per sweep point.

Gym 1 observes the network without feeding it back, so its NNout1 at the sampled rows can come from this
second, tiny ngspice run on exactly the sampled inputs, while the loop runs without the network (the network's
matrix load was ~75 % of a gym-1 episode). The comparison SPICE-vs-PyTorch stays one of SPICE's output of
the exported netlist against PyTorch. Uses ngspice's ``pwl()`` in B sources: ngspice only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..sim import SimJob

PER_LINE = 12  # (index, value) pairs per netlist line


def _pwl_lines(name: str, values: np.ndarray) -> list[str]:
    pairs = [f"{k}, {float(v)!r}" for k, v in enumerate(values)]
    chunks = [", ".join(pairs[i:i + PER_LINE]) for i in range(0, len(pairs), PER_LINE)]
    lines = [f"B{name} {name} 0 V=pwl(V(buckbi_row), {chunks[0]}"]
    lines += [f"+ , {c}" for c in chunks[1:]]
    lines[-1] += ")"
    return lines


def rows_netlist(nn_file: str | Path, x: np.ndarray, inputs: list[str], output: str, subckt: str) -> str:
    """A netlist whose DC sweep over ``buckbi_row`` = 0..N-1 puts row k of ``x`` on the inputs."""
    lines = ["* buckbi: the exported actor on the sampled inputs, one DC sweep point per row",
             f'.include "{Path(nn_file).resolve()}"', "Vrow buckbi_row 0 0"]
    for i, name in enumerate(inputs):
        lines += _pwl_lines(name, x[:, i])
    # Tight Newton tolerances: the sweep's points are DC solutions, converged to ~1e-6 V with the defaults.
    lines += [f"X99 {' '.join(inputs)} {output} {subckt}", ".options reltol=1e-9 vntol=1e-12 abstol=1e-15",
              f".dc Vrow 0 {len(x) - 1} 1", f".save V({output})", ".end"]
    return "\n".join(lines) + "\n"


def rows_job(nn_file: str | Path, x: np.ndarray, inputs: list[str], output: str, subckt: str,
             name: str) -> SimJob:
    return SimJob(rows_netlist(nn_file, x, inputs, output, subckt), traces=[f"V({output})"], name=name)
