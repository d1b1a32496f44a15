"""Simulate an exported network in SPICE on given input vectors, for equivalence checks."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from ..sim import SimJob, run_netlist
from . import export_model
from .graph import has_state, lower

DIALECT_MODE = {"ngspice": "kiltpsa", "ltspice": "ltpsa"}  # ngspice compatibility mode per dialect


def _backend(simulator, dialect: str):
    """The LTspice dialect is checked in ngspice's LTspice compatibility mode when no LTspice is given."""
    from ..sim import NgspiceBackend, get_simulator
    if simulator is None or simulator == "ngspice":
        return NgspiceBackend(compatibility=DIALECT_MODE[dialect])
    return get_simulator(simulator)


def spice_forward(model: nn.Module, xs: np.ndarray, *, dialect: str = "ngspice", structure: str = "fast",
                  simulator=None, workdir: str | Path | None = None, timeout: float = 600.0,
                  codemodel: str | Path | None = None) -> np.ndarray:
    """Outputs of the exported feed-forward ``model`` for each row of ``xs``, from one SPICE ``.op``.

    Every row gets its own instance of the subcircuit driven by DC sources, so one operating point
    evaluates the whole batch.
    """
    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    ops, n_in, n_out = lower(model, xs.shape[1])
    if has_state(ops):
        raise ValueError("the model holds recurrent state; use spice_step() for a clocked run")
    sub = export_model(model, dialect=dialect, structure=structure, input_names=[f"NNIN{i + 1}" for i in range(n_in)],
                       codemodel=codemodel)
    lines = ["* buckbi spice_forward batch", sub]
    for k, row in enumerate(xs):
        lines += [f"VX{k}_{i} x{k}_{i} 0 {float(v)!r}" for i, v in enumerate(row)]
        pins = [f"x{k}_{i}" for i in range(n_in)] + [f"y{k}_{j}" for j in range(n_out)]
        lines.append(f"XNN{k} {' '.join(pins)} ActorSubckt")
    traces = [f"V(y{k}_{j})" for k in range(len(xs)) for j in range(n_out)]
    lines += [".save " + " ".join(traces), ".op", ".end"]
    res = _run("\n".join(lines), traces, simulator, dialect, workdir, timeout)
    return res.data.iloc[0][traces].to_numpy(dtype=np.float64).reshape(len(xs), n_out)


def spice_step(model: nn.Module, xs: np.ndarray, *, period: float = 1e-3, dialect: str = "ngspice",
               structure: str = "fast", simulator=None, workdir: str | Path | None = None,
               timeout: float = 600.0) -> np.ndarray:
    """Outputs after each rising CLK edge of a clocked transient whose inputs are held on the same clock, as in a
    gym: row k reaches the network at rising edge k (through a master-slave hold) and the output is read after it."""
    xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
    steps, n_in = xs.shape
    ops, _, n_out = lower(model, n_in)
    clocked = has_state(ops)
    sub = export_model(model, dialect=dialect, structure=structure)
    lines = ["* buckbi spice_step clocked transient", sub]
    # Row k is at the hold's input from k*P + P/4 (clock low), the clock rises at k*P + P/2 (the held input becomes
    # row k), the output is read at k*P + 0.9P.
    edge = 1e-9
    for i in range(n_in):
        pts = [f"0 {float(xs[0, i])!r}"]
        for k in range(1, steps):
            t = k * period + period / 4
            pts += [f"{t!r} {float(xs[k - 1, i])!r}", f"{t + edge!r} {float(xs[k, i])!r}"]
        lines.append(f"VX{i} x{i}_src 0 PWL(" + " ".join(pts) + ")")
        lines += [f"SX{i}m x{i}_src x{i}_m 0 clk BSTEP_LOW", f"CX{i}m x{i}_m 0 1n", f"EX{i}b x{i}_b 0 x{i}_m 0 1",
                  f"SX{i}s x{i}_b x{i} clk 0 BSTEP_HIGH", f"CX{i}s x{i} 0 1n", f"RX{i}s x{i} 0 1e15"]
    lines += [".model BSTEP_LOW SW(Vt=-0.4 Vh=0 Ron=1m Roff=1e30)", ".model BSTEP_HIGH SW(Vt=0.6 Vh=0 Ron=1m Roff=1e30)"]
    # High for 0.45 P, so rise + width + fall stays shorter than the period (see the README's ngspice notes).
    lines.append(f"VCLK clk 0 PULSE(0 1 {period / 2!r} {edge!r} {edge!r} {0.45 * period!r} {period!r})")
    pins = [f"x{i}" for i in range(n_in)] + (["clk"] if clocked else []) + [f"y{j}" for j in range(n_out)]
    lines.append(f"XNN {' '.join(pins)} ActorSubckt")
    traces = [f"V(y{j})" for j in range(n_out)]
    lines += [".save " + " ".join(traces), ".options method=gear",
              f".tran {period / 50!r} {steps * period!r} 0 {period / 50!r}", ".end"]
    res = _run("\n".join(lines), traces, simulator, dialect, workdir, timeout)
    t = res.data["time"].to_numpy()
    when = (np.arange(steps) + 0.9) * period
    return np.column_stack([np.interp(when, t, res.data[c].to_numpy()) for c in traces])


def _run(text: str, traces: list[str], simulator, dialect: str, workdir, timeout: float):
    backend = _backend(simulator, dialect)
    if workdir is not None:
        return run_netlist(SimJob(text, traces=traces, name="verify"), workdir, simulator=backend, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="buckbi-verify-") as tmp:
        return run_netlist(SimJob(text, traces=traces, name="verify"), tmp, simulator=backend, timeout=timeout)
