"""One cell of a test plan: a test at a corner for one controller (the NN in deploy, or the teacher), run anywhere.

``run_cell`` never raises: a cell that cannot run is a result with its error (the verdict fails it).
"""
from __future__ import annotations

import hashlib
import io
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..episodes.run import Actor, run_episode
from ..evaluation.figures import episode_figures, figures_of, period_means, reference_at
from .plan import FRA_KEYS, Corner, Test, cell_params

GYM = {"nn": "deploy", "teacher": "teacher"}
TRACE_POINTS = 1500  # a cell's plotted trace: at most this many period means
# SPICE's largest step in a plan's transient cells: T/100. At the default T/20, ngspice's step error keeps a
# lightly damped NN loop moving (measured: the pretrained actor at vin 200 V, vref 100 V, 20 Ohm: its duty wanders
# 0.493..0.512 and Vout_avg by 0.25 V at T/20, 0.5022..0.5026 and 0.01 V at T/100, 0.0066 V on the fast simulator;
# 1.5x the run time). The loop gain keeps its own default (T/400).
SPICE_STEPS_PER_PERIOD = 100


def actor_id(actor: Actor | None) -> str:
    """A digest of the network under test (its weights, or its netlist's text): a changed network runs again."""
    if actor is None:
        return ""
    text = getattr(actor, "text", None)
    if isinstance(text, str):
        return hashlib.sha256(text.encode()).hexdigest()[:16]
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in actor.state_dict().items()}, buf)
    return hashlib.sha256(repr(actor).encode() + buf.getvalue()).hexdigest()[:16]


def run_cell(actor: Actor | None, test: Test, corner: Corner, controller: str, simulator=None,
             timeout: float = 900.0, max_step: float | None = None, parts: dict | None = None) -> dict:
    """The cell's figures (and a trace to plot); ``error`` is set instead when it could not run. ``parts``: a
    tolerance draw's values of L1, C1, ESR, Lo, ro (default the corner's, nominal parts)."""
    start = time.perf_counter()
    out = {"test": test.name, "corner": corner.name, "controller": controller, "figures": {}, "error": "",
           "trace": {}}
    try:
        actor = _deployed(actor, test, controller)
        with tempfile.TemporaryDirectory(prefix="buckbi-plan-") as tmp:
            if test.scenario == "fra":
                out["figures"], out["trace"] = _fra(actor, test, corner, controller, simulator, Path(tmp), timeout,
                                                    max_step, parts)
            else:
                from ..engines import is_fast
                if max_step is None and not is_fast(simulator):
                    max_step = 1 / corner.params().fsw / SPICE_STEPS_PER_PERIOD
                ep = run_episode(GYM[controller], actor if controller == "nn" else None,
                                 cell_params(test, corner, parts, controller),
                                 tmp, simulator, timeout=timeout, keep_waveforms=True, scenario=test.scenario,
                                 max_step=max_step, settings=test.settings)
                out["figures"], out["trace"] = _transient(ep, test)
    except Exception as err:  # this cell only: the plan goes on
        out["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        out["figures"] = {f: math.nan for f in figures_of(test.scenario)}
    out["elapsed_s"] = round(time.perf_counter() - start, 3)
    return out


def run_cells(actor: Actor | None, test: Test, corner: Corner, controller: str, simulator=None,
              timeout: float = 900.0, max_step: float | None = None, parts_list: list | None = None) -> list[dict]:
    """``run_cell`` for cells that differ only in their parts (a tolerance test's draws at one corner). On the fast
    simulator a transient test's draws run as one batch: one kernel call, no SPICE files; elsewhere one by one."""
    from ..engines import is_fast
    from ..engines.fast import FastEngine
    parts_list = list(parts_list or [None])
    if len(parts_list) == 1 or test.scenario == "fra" or not is_fast(simulator):
        return [run_cell(actor, test, corner, controller, simulator, timeout, max_step, p) for p in parts_list]
    start = time.perf_counter()
    try:
        eps = FastEngine.episode_batch(GYM[controller], _deployed(actor, test, controller) if controller == "nn"
                                       else None, [cell_params(test, corner, p, controller) for p in parts_list],
                                       test.scenario, test.settings, keep_waveforms=True)
    except Exception:  # one by one, each cell with its own error
        return [run_cell(actor, test, corner, controller, simulator, timeout, max_step, p) for p in parts_list]
    each = round((time.perf_counter() - start) / len(parts_list), 3)
    outs = []
    for ep in eps:
        out = {"test": test.name, "corner": corner.name, "controller": controller, "error": "", "elapsed_s": each}
        out["figures"], out["trace"] = _transient(ep, test)
        outs.append(out)
    return outs


def _deployed(actor: Actor | None, test: Test, controller: str) -> Actor | None:
    """The network as the test deploys it: with its weights quantised when the test says so."""
    if test.weights and controller == "nn":
        from ..nn.quantize import quantize_weights
        if not isinstance(actor, torch.nn.Module):
            raise ValueError("weights quantisation needs a PyTorch actor (--actor), not a netlist")
        return quantize_weights(actor, test.weights)
    return actor


def _transient(ep, test: Test) -> tuple[dict, dict]:
    return {k: float(v) for k, v in episode_figures(ep, test.band_pct).items()}, _trace(ep)


def _trace(ep) -> dict:
    """Period-averaged Vout, the reference and the duty, thinned to TRACE_POINTS, for the cell's plot."""
    per = 1 / ep.params.fsw
    tm, vm = period_means(ep.waveforms["time"].to_numpy(), ep.waveforms["V(out)"].to_numpy(), per)
    step = max(1, len(tm) // TRACE_POINTS)
    tr = ep.rows["time"].to_numpy()
    pick = np.linspace(0, len(tr) - 1, min(len(tr), TRACE_POINTS)).astype(int)
    return {"t_ms": (tm[::step] * 1e3).round(4).tolist(), "vout_avg": vm[::step].round(5).tolist(),
            "ref": reference_at(ep, tm[::step]).round(5).tolist(),
            "t_rows_ms": (tr[pick] * 1e3).round(4).tolist(), "duty": ep.rows["V(duty)"].to_numpy()[pick].round(5).tolist()}


def _fra(actor, test: Test, corner: Corner, controller: str, simulator, tmp: Path, timeout: float,
         max_step: float | None, parts: dict | None) -> tuple[dict, dict]:
    from ..loopgain import frequencies, margins_table, measure
    st = FRA_KEYS | test.settings
    point = cell_params(test, corner, parts, controller)
    freqs = frequencies(st["f_start_Hz"], st["f_end_Hz"], int(st["per_octave"]), point.fsw)
    if st.get("method") == "pop":  # the periodic operating point and the linearised period map (the fast model)
        from ..engines import is_fast
        from ..loopgain.pop import PopError, measure_pop
        if not is_fast(simulator):
            raise PopError(f"test {test.name}: method = \"pop\" runs on the fast model (--simulator pwl); in SPICE "
                           "the loop gain is measured by injection (method = \"inject\")")
        res = measure_pop(actor if controller == "nn" else None, [point], freqs, controllers=(controller,))
    else:
        res = measure(actor if controller == "nn" else None, [point], freqs, tmp, simulator,
                      amplitude=st["amplitude_V"], jobs=1, controllers=(controller,), timeout=timeout,
                      max_step=max_step, soft_start_ms=corner.conv.soft_start_ms)
    table = res.table
    errors = table["error"].astype(str)
    if (errors != "").all():
        raise RuntimeError(f"every frequency failed: {errors.iloc[0]}")
    m = margins_table(table).iloc[0]
    figs = {f: float(m[f]) for f in ("crossover_Hz", "phase_margin_deg", "gain_margin_dB")}
    if math.isfinite(figs["phase_margin_deg"]) and not math.isfinite(figs["gain_margin_dB"]):
        figs["gain_margin_dB"] = math.inf  # the phase never reaches -180 degrees in the measured range
    trace = {"f_Hz": table["f_Hz"].round(4).tolist(), "gain_dB": table["gain_dB"].round(4).tolist(),
             "phase_deg": table["phase_deg"].round(3).tolist(), "failed": int((errors != "").sum())}
    return figs, trace
