"""The fast exact simulator of one gym episode: the kernel's rows for an operating point and a scenario."""
from __future__ import annotations

import copy
import threading
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..export.graph import Activation, Affine, ExportError, lower
from ..converters.buck.scenarios import Scenario, get_scenario
from ..converters.buck.spec import get_gym
from .circuit import GymCircuit, ScenarioSignals, read_stage, scenario_signals
from .model import ILOAD, N_INPUTS, REF, VIN
from ..nn.activations import ACTIVATIONS
from .kernel import CMD_NN, CMD_NN_LIMITED, CMD_TEACHER, ROW_COLS, episode, run_batch
from .network import ACT_NONE, mlp_rows
from .model import modal_model, operating_point

_CMD = {"teacher": CMD_TEACHER, "nn": CMD_NN, "nn_limited": CMD_NN_LIMITED}  # by Gym.command
COLUMNS = (["time", "V(out)", "V(duty)"] + [f"V(nnin{i})" for i in range(1, 20)]
           + ["V(nnpwm)", "V(nnout1)", "V(tduty)"])
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


@lru_cache(maxsize=64)
def _circuit(stage_key: tuple) -> GymCircuit:
    return read_stage(stage_key)


def circuit(params) -> GymCircuit:
    """The fast model's circuit of an episode: its converter's stage and teacher and its parts (cached per set)."""
    return _circuit(params.stage_key())


def signal_arrays(sig: ScenarioSignals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's packed piecewise-linear inputs: rows REF, ILOAD, VIN of (times, values, counts)."""
    series = {REF: (sig.ref_t, sig.ref_v), ILOAD: (sig.ld_t, sig.ld_v), VIN: (sig.vin_t, sig.vin_v)}
    width = max(1, max(len(t) for t, _ in series.values()))
    sig_t, sig_v = np.zeros((N_INPUTS, width)), np.zeros((N_INPUTS, width))
    sig_n = np.zeros(N_INPUTS, dtype=np.int64)
    for k, (t, v) in series.items():
        sig_t[k, :len(t)], sig_v[k, :len(v)], sig_n[k] = t, v, len(t)
    return sig_t, sig_v, sig_n


# The kernel's per-episode arguments, in ``kernel.episode``'s order (the network's come after ``cmd``).
_EPISODE_ARGS = ("lam", "V", "Vi", "ViB", "ev_z", "ev_u", "ev_abs", "cap", "bounded", "sig_t", "sig_v", "sig_n",
                 "current_load", "corners", "timing", "vmax", "Rc", "steps")
_EPISODE_ARGS_2 = ("check", "clamp_hi", "clamp_lo", "x0", "pmode0", "tmode0", "rows", "inj_amp")
_EPISODE_ARGS_3 = ("wave", "ext", "adc_levels", "delay", "noise", "teacher_adc")


def episode_arguments(gym: str, params, scenario: str | Scenario = "startup", check: float | None = None,
                      settings: dict | None = None, sub: int = 0) -> dict:
    """Everything the kernel needs for one episode but the network, by argument name (outputs allocated)."""
    c = circuit(params)
    g = get_gym(gym)
    sig = scenario_signals(get_scenario(scenario), params, settings=settings)
    teacher_adc = params.adc_levels > 0  # the teacher reads the same ADC (held at ctrlclk, as the NN's inputs)
    m = modal_model(c, params.ro, params.Lo, params.vmax, sig.current_load, sig.inject, teacher_adc)
    op = operating_point(c, float(sig.vin_v[0]), params.ro, params.vmax, sig.current_load,
                         float(sig.ld_v[0]) if sig.current_load else 0.0)
    sig_t, sig_v, sig_n = signal_arrays(sig)
    arrays = dict(zip(_EPISODE_ARGS[:9], m.kernel_arrays()))
    arrays.update(
        sig_t=sig_t, sig_v=sig_v, sig_n=sig_n, current_load=bool(sig.current_load),
        corners=np.asarray(sig.corners, dtype=float),
        timing=np.array([c.period, c.t_ctrl, c.edge, c.master_vt, c.slave_vt, c.pwm_delay, c.saw_td, c.saw_tr,
                         c.saw_pw, c.saw_tf, c.switch_vt / c.comparator_gain]),
        vmax=float(params.vmax), Rc=float(c.Rc), steps=int(params.steps),
        check=float(check if check is not None else c.period / 20), clamp_hi=op.clamp_hi, clamp_lo=op.clamp_lo,
        # the injection's oscillator starts at (cos, sin) = (1, 0): sin(w t)
        x0=op.x if sig.inject is None else np.r_[op.x, 1.0, 0.0], pmode0=int(op.plant), tmode0=int(op.teacher),
        rows=np.empty((params.steps + 1, ROW_COLS)), inj_amp=float(sig.inject[0]) if sig.inject else 0.0,
        wave=np.empty(((params.steps + 1) * sub, 3)), ext=np.empty((params.steps + 1 if sub else 0, 2)),
        adc_levels=float(params.adc_levels), delay=int(params.delay_periods) if g.command != "teacher" else 0,
        noise=params.noise_volts(), teacher_adc=teacher_adc)
    return arrays


def _network(gym: str, actor: nn.Module | None) -> tuple:
    g = get_gym(gym)
    return (_CMD[g.command],) + compile_actor(actor if g.command != "teacher" else None)


def _teacher_runs(gym: str) -> bool:
    """The teacher is in the gym's circuit (it controls or labels); in deploy nothing reads its states."""
    g = get_gym(gym)
    return g.command == "teacher" or g.labelled


def simulate(gym: str, actor: nn.Module | None, params, scenario: str | Scenario = "startup",
             check: float | None = None, settings: dict | None = None,
             sub: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's rows (time, Vout, duty, NNin1..19, nnpwm, NNout1) at the episode's STEPS + 1 sampling instants,
    and with ``sub`` > 0 the waveform (time, V(out), V(vsense)) at ``sub`` points per period and each period's
    exact (min, max) of V(out) (else empty)."""
    a = episode_arguments(gym, params, scenario, check, settings, sub)
    episode(*(a[k] for k in _EPISODE_ARGS), *_network(gym, actor), *(a[k] for k in _EPISODE_ARGS_2), sub,
            *(a[k] for k in _EPISODE_ARGS_3), _teacher_runs(gym))
    return a["rows"], a["wave"], a["ext"]


def _stack(values: list, fill: float = 0.0) -> np.ndarray:
    """Arrays of one argument over a batch, padded to the largest shape (the kernel reads only its own part)."""
    arrs = [np.asarray(v) for v in values]
    shape = tuple(max(a.shape[i] for a in arrs) for i in range(arrs[0].ndim))
    out = np.full((len(arrs),) + shape, fill, dtype=np.result_type(*arrs))
    for b, a in enumerate(arrs):
        out[(b,) + tuple(slice(0, s) for s in a.shape)] = a
    return out


_BATCH_LOCK = threading.Lock()


def simulate_batch(gym: str, actor: nn.Module | None, params_list, scenario: str | Scenario = "startup",
                   check: float | None = None, settings: dict | None = None,
                   sub: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``simulate`` for many operating points or tolerance draws of one network and scenario, in one kernel call
    (numba threads over the batch); each result equals its ``simulate``'s."""
    args = [episode_arguments(gym, p, scenario, check, settings, sub) for p in params_list]
    if len({a["lam"].shape for a in args}) != 1:
        raise PwlUnsupportedError("a batch runs one scenario: every episode needs the same state size")
    batch = {k: _stack([a[k] for a in args], np.inf if k == "corners" else 0.0)
             for k in _EPISODE_ARGS + _EPISODE_ARGS_2 + _EPISODE_ARGS_3}
    with _BATCH_LOCK:  # numba's workqueue threading layer (where no OpenMP or TBB) takes one parallel call at a time
        run_batch(*(batch[k] for k in _EPISODE_ARGS), *_network(gym, actor), *(batch[k] for k in _EPISODE_ARGS_2),
                  sub, *(batch[k] for k in _EPISODE_ARGS_3), _teacher_runs(gym))
    return [(batch["rows"][b, :len(a["rows"])], batch["wave"][b, :len(a["wave"])], batch["ext"][b, :len(a["ext"])])
            for b, a in enumerate(args)]


def rows_frame(gym: str, rows: np.ndarray) -> pd.DataFrame:
    """The kernel's rows as the SPICE episode's DataFrame (same columns for the same gym)."""
    g = get_gym(gym)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.insert(1, "V(ctrlclk)", 0.0)
    drop = []
    if not g.network:
        drop += [f"V(nnin{i})" for i in range(1, 20)] + ["V(nnout1)"]
    if not g.labelled:
        drop += ["V(nnpwm)", "V(tduty)"]
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
