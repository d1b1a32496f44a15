"""Episodes on the fast exact simulator: the same EpisodeParams in, the same Episode out as SPICE."""
from __future__ import annotations

import copy
import time
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..export.graph import Activation, Affine, ExportError, lower
from .circuit import GymCircuit, read_circuit, spice_eval
from .kernel import (ACT_ELU, ACT_HARDSIGMOID, ACT_HARDTANH, ACT_LEAKY, ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_SILU,
                     ACT_SOFTPLUS, ACT_TANH, CMD_NN, CMD_NN_LIMITED, CMD_TEACHER, ROW_COLS, mlp_rows,
                     run_kernel)
from .model import modal_model, operating_point

_ACTS = {"relu": ACT_RELU, "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH, "leaky_relu": ACT_LEAKY,
         "hardtanh": ACT_HARDTANH, "hardsigmoid": ACT_HARDSIGMOID, "silu": ACT_SILU, "elu": ACT_ELU,
         "softplus": ACT_SOFTPLUS}
_CMD = {"teacher": CMD_TEACHER, "gym1": CMD_TEACHER, "gym2": CMD_NN, "deploy": CMD_NN_LIMITED}
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
        elif isinstance(op, Activation) and layers and layers[-1][1] is None and op.kind in _ACTS:
            layers[-1][1] = op
        else:
            what = op.kind if hasattr(op, "kind") else type(op).__name__
            raise PwlUnsupportedError(f"the fast simulator runs Linear layers each followed by at most one of "
                                      f"{', '.join(_ACTS)}; this actor has {what} there (run it with "
                                      "--simulator ngspice)")
    weights = np.concatenate([a.weight.ravel() for a, _ in layers]).astype(np.float64)
    biases = np.concatenate([a.bias.ravel() for a, _ in layers]).astype(np.float64)
    shapes = np.array([a.weight.shape for a, _ in layers], dtype=np.int64)
    acts = np.array([ACT_NONE if f is None else _ACTS[f.kind] for _, f in layers], dtype=np.int64)
    act_p = np.zeros((len(layers), 2))
    for k, (_, f) in enumerate(layers):
        if f is not None:
            p = f.params
            act_p[k] = {"leaky_relu": (p.get("slope", 0), 0), "hardtanh": (p.get("lo", 0), p.get("hi", 0)),
                        "elu": (p.get("alpha", 0), 0),
                        "softplus": (p.get("beta", 0), p.get("threshold", 0))}.get(f.kind, (0, 0))
    return weights, biases, shapes, acts, act_p


@lru_cache(maxsize=8)
def circuit(fsw: float) -> GymCircuit:
    return read_circuit(fsw)


def _inputs(c: GymCircuit, params, load_step: bool) -> tuple[np.ndarray, ...]:
    ref_t = np.array([c.softstart_delay, c.softstart_delay + c.softstart_time])
    ref_v = np.array([0.0, params.vref])
    if load_step:
        env = {"vref": params.vref}
        ld_t = np.array([spice_eval(t, env) for t, _ in c.step_pwl])
        ld_v = np.array([spice_eval(v, env) for _, v in c.step_pwl])
    else:
        ld_t = ld_v = np.zeros(0)
    corners = np.concatenate([ref_t, ld_t])
    return ref_t, ref_v, ld_t, ld_v, corners


def simulate(gym: str, actor: nn.Module | None, params, scenario: str = "startup",
             check: float | None = None) -> np.ndarray:
    """The kernel's rows (time, Vout, duty, NNin1..19, nnpwm, NNout1) at the episode's STEPS + 1 sampling instants."""
    c = circuit(float(params.fsw))
    load_step = scenario == "loadstep"
    m = modal_model(c, params.vin, params.ro, params.Lo, params.vmax, load_step)
    ref_t, ref_v, ld_t, ld_v, corners = _inputs(c, params, load_step)
    timing = np.array([c.period, c.t_ctrl, c.edge, c.master_vt, c.slave_vt, c.pwm_delay, c.saw_td, c.saw_tr,
                       c.saw_pw, c.saw_tf, c.switch_vt / c.comparator_gain])
    net = compile_actor(actor if gym in ("gym2", "deploy") else None)
    op = operating_point(c, params.vin, params.ro, params.vmax, load_step, float(ld_v[0]) if load_step else 0.0)
    rows = np.empty((params.steps + 1, ROW_COLS))
    run_kernel(m.lam, m.V, m.Vi, m.ViB, m.ev_z, m.ev_u, ref_t, ref_v, ld_t, ld_v, corners, timing,
               float(params.vin), float(params.vmax), c.Rc, int(params.steps), _CMD[gym], *net,
               check if check is not None else c.period / 20, op.clamp_hi, op.clamp_lo, op.x, op.plant, op.teacher,
               rows)
    return rows


def rows_frame(gym: str, rows: np.ndarray) -> pd.DataFrame:
    """The kernel's rows as the SPICE episode's DataFrame (same columns for the same gym)."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.insert(1, "V(ctrlclk)", 0.0)
    drop = []
    if gym == "teacher":
        drop += [f"V(nnin{i})" for i in range(1, 20)] + ["V(nnout1)"]
    if gym == "deploy":
        drop.append("V(nnpwm)")
    return df.drop(columns=drop)


def require_pytorch_actor(actor) -> None:
    """The fast simulator runs PyTorch actors; a subcircuit file (--netlist) runs in SPICE only."""
    if actor is not None and not isinstance(actor, nn.Module):
        raise PwlUnsupportedError("the fast simulator runs PyTorch actors; a subcircuit file (--netlist) runs in "
                                  "SPICE only (--simulator ngspice)")


def _actor_on_rows(actor: nn.Module, x: np.ndarray) -> np.ndarray:
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


def run_episode_pwl(gym: str, actor, params, scenario: str = "startup", check: float | None = None):
    """One episode on the fast simulator; the actor's output at the rows is PyTorch's on the held inputs."""
    from ..episode import INPUTS, Episode, EpisodeError
    if gym != "teacher" and actor is None:
        raise EpisodeError(f"{gym} runs the NN: pass an actor (a 19-input, 1-output nn.Sequential)")
    require_pytorch_actor(actor)
    start = time.perf_counter()
    rows = rows_frame(gym, simulate(gym, actor, params, scenario, check))
    x = rows[[f"V({n.lower()})" for n in INPUTS]].to_numpy() if gym != "teacher" else np.empty((len(rows), 0))
    if gym != "teacher":
        if gym == "gym1":  # outside the loop: what the exported net gives on the held inputs
            rows["V(nnout1)"] = _actor_on_rows(actor, x)
        pred = rows["V(nnout1)"].to_numpy()
    else:
        pred = None
    y = rows["V(nnpwm)"].to_numpy() if gym != "deploy" else None
    return Episode(gym, params, x, y, pred, rows, time.perf_counter() - start)
