"""The fast exact simulator of one gym episode: the kernel's rows for an operating point and a scenario."""
from __future__ import annotations

import copy
import dataclasses
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..export.graph import Activation, Affine, ExportError, lower
from ..converters.buck.scenarios import Scenario, get_scenario
from ..converters.buck.spec import get_gym
from .circuit import GymCircuit, ScenarioSignals, read_circuit, scenario_signals
from .model import ILOAD, N_INPUTS, REF, VIN
from ..nn.activations import ACTIVATIONS
from .kernel import ACT_NONE, CMD_NN, CMD_NN_LIMITED, CMD_TEACHER, ROW_COLS, mlp_rows, run_kernel
from .model import modal_model, operating_point

_CMD = {"teacher": CMD_TEACHER, "nn": CMD_NN, "nn_limited": CMD_NN_LIMITED}  # by Gym.command
COLUMNS = (["time", "V(out)", "V(duty)"] + [f"V(nnin{i})" for i in range(1, 20)] + ["V(nnpwm)", "V(nnout1)"])
assert len(COLUMNS) == ROW_COLS


class PwlUnsupportedError(ValueError):
    """The fast simulator cannot run this actor or circuit; SPICE can."""


_NO_ACTOR = (np.zeros(19), np.zeros(1), np.array([[1, 19]], dtype=np.int64), np.array([ACT_NONE], dtype=np.int64),
             np.zeros((1, 2)))  # what the kernel gets when the network is out of the loop


def compile_actor(model: nn.Module | None) -> tuple[np.ndarray, ...]:
    """Flatten a feed-forward actor into the kernel's arrays (Linear layers, each with at most one activation)."""
    if model is None:
        return _NO_ACTOR
    try:
        ops, n_in, n_out = lower(model, 19)
    except ExportError as err:
        raise PwlUnsupportedError(f"the fast simulator cannot compile this actor: {err}") from err
    if n_out != 1:
        raise PwlUnsupportedError(f"the gyms read one output (NNout1), this actor has {n_out}")
    layers: list[list] = []
    for op in ops:
        if isinstance(op, Affine):
            layers.append([op, None])
        elif isinstance(op, Activation) and layers and layers[-1][1] is None and op.kind in ACTIVATIONS:
            layers[-1][1] = op
        else:
            what = op.kind if hasattr(op, "kind") else type(op).__name__
            raise PwlUnsupportedError(f"the fast simulator runs Linear layers each followed by at most one of "
                                      f"{', '.join(ACTIVATIONS)}; this actor has {what} there (run it with "
                                      "--simulator ngspice)")
    weights = np.concatenate([a.weight.ravel() for a, _ in layers]).astype(np.float64)
    biases = np.concatenate([a.bias.ravel() for a, _ in layers]).astype(np.float64)
    shapes = np.array([a.weight.shape for a, _ in layers], dtype=np.int64)
    acts = np.array([ACT_NONE if f is None else ACTIVATIONS[f.kind].id for _, f in layers], dtype=np.int64)
    act_p = np.zeros((len(layers), 2))
    for k, (_, f) in enumerate(layers):
        if f is not None:  # the table's parameter order: p0, p1
            names = ACTIVATIONS[f.kind].params
            act_p[k, :len(names)] = [f.params[n] for n in names]
    return weights, biases, shapes, acts, act_p


@lru_cache(maxsize=8)
def circuit(fsw: float) -> GymCircuit:
    return read_circuit(fsw)


def signal_arrays(sig: ScenarioSignals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's packed piecewise-linear inputs: rows REF, ILOAD, VIN of (times, values, counts)."""
    series = {REF: (sig.ref_t, sig.ref_v), ILOAD: (sig.ld_t, sig.ld_v), VIN: (sig.vin_t, sig.vin_v)}
    width = max(1, max(len(t) for t, _ in series.values()))
    sig_t, sig_v = np.zeros((N_INPUTS, width)), np.zeros((N_INPUTS, width))
    sig_n = np.zeros(N_INPUTS, dtype=np.int64)
    for k, (t, v) in series.items():
        sig_t[k, :len(t)], sig_v[k, :len(v)], sig_n[k] = t, v, len(t)
    return sig_t, sig_v, sig_n


def simulate(gym: str, actor: nn.Module | None, params, scenario: str | Scenario = "startup",
             check: float | None = None, settings: dict | None = None,
             sub: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's rows (time, Vout, duty, NNin1..19, nnpwm, NNout1) at the episode's STEPS + 1 sampling instants,
    and with ``sub`` > 0 the waveform (time, V(out), V(vsense)) at ``sub`` points per period and each period's
    exact (min, max) of V(out) (else empty)."""
    c = circuit(float(params.fsw))
    if not params.nominal_parts:  # a tolerance draw: the parts the parameter file gives SPICE too
        c = dataclasses.replace(c, L=params.L1, C=params.C1, Rc=params.ESR)
    g = get_gym(gym)
    sig = scenario_signals(get_scenario(scenario), params, settings=settings)
    m = modal_model(c, params.ro, params.Lo, params.vmax, sig.current_load, sig.inject)
    timing = np.array([c.period, c.t_ctrl, c.edge, c.master_vt, c.slave_vt, c.pwm_delay, c.saw_td, c.saw_tr,
                       c.saw_pw, c.saw_tf, c.switch_vt / c.comparator_gain])
    net = compile_actor(actor if g.command != "teacher" else None)
    op = operating_point(c, float(sig.vin_v[0]), params.ro, params.vmax, sig.current_load,
                         float(sig.ld_v[0]) if sig.current_load else 0.0)
    rows = np.empty((params.steps + 1, ROW_COLS))
    x0 = op.x if sig.inject is None else np.r_[op.x, 1.0, 0.0]  # the oscillator at (cos, sin) = (1, 0): sin(w t)
    wave = np.empty(((params.steps + 1) * sub, 3))
    ext = np.empty((params.steps + 1 if sub else 0, 2))
    run_kernel(m.lam, m.V, m.Vi, m.ViB, m.ev_z, m.ev_u, *signal_arrays(sig), sig.current_load, sig.corners, timing,
               float(params.vmax), c.Rc, int(params.steps), _CMD[g.command], *net,
               check if check is not None else c.period / 20, op.clamp_hi, op.clamp_lo, x0, op.plant, op.teacher,
               rows, sig.inject[0] if sig.inject else 0.0, sub, wave, ext, float(params.adc_levels),
               int(params.delay_periods) if g.command != "teacher" else 0, params.noise_volts())
    return rows, wave, ext


def rows_frame(gym: str, rows: np.ndarray) -> pd.DataFrame:
    """The kernel's rows as the SPICE episode's DataFrame (same columns for the same gym)."""
    g = get_gym(gym)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.insert(1, "V(ctrlclk)", 0.0)
    drop = []
    if not g.network:
        drop += [f"V(nnin{i})" for i in range(1, 20)] + ["V(nnout1)"]
    if not g.labelled:
        drop.append("V(nnpwm)")
    return df.drop(columns=drop)


def require_pytorch_actor(actor) -> None:
    """The fast simulator runs PyTorch actors; a subcircuit file (--netlist) runs in SPICE only."""
    if actor is not None and not isinstance(actor, nn.Module):
        raise PwlUnsupportedError("the fast simulator runs PyTorch actors; a subcircuit file (--netlist) runs in "
                                  "SPICE only (--simulator ngspice)")


def actor_on_rows(actor: nn.Module, x: np.ndarray) -> np.ndarray:
    """The actor on every row: compiled when it compiles (equal to PyTorch float64 within 1e-12), else PyTorch."""
    try:
        return mlp_rows(np.ascontiguousarray(x), *compile_actor(actor))
    except PwlUnsupportedError:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 2k rows through a small net: threads only add overhead
        try:
            with torch.no_grad():
                return copy.deepcopy(actor).double().eval()(torch.from_numpy(x.copy())).numpy().ravel()
        finally:
            torch.set_num_threads(threads)
