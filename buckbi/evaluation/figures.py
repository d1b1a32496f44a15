"""The figures engineers sign a controller off with, defined once: from an episode's waveform and rows.

Transient figures (DC error, overshoot, undershoot, settling, step deviation, recovery, regulation) use the
**period-averaged** Vout: the mean of V(out) over each whole switching period of the waveform grid (T/20, both
engines), so that neither the ripple nor the phase it is sampled at enters them. The ripple has its own figure,
from V(out)'s exact extremes per period (``buckbi.episodes.sampling.EXTREMES``: every switching instant). ``sse_pct`` keeps
the older figure for what it is: the error of the *sampled* Vout (one sample per period at the falling ctrlclk
edge, which carries the ripple's phase). Loop-gain figures come from ``buckbi.loopgain``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..contract import Episode
from ..converters.buck.scenarios import get_scenario
from ..episodes.sampling import EXTREMES

BAND_PCT = 2.0  # settling and recovery band, % of vref (a test may set band_pct)
REG_WINDOW = 5e-3  # regulation: Vout_dc over the last 5 ms (at most a quarter) before each level ends
SAT_TOL = 1e-6  # duty within this of 0 or 1 counts as saturated


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    description: str


FIGURES = {f.name: f for f in (
    Figure("dc_error_pct", "%", "|Vout_dc - vref| / vref: Vout averaged over whole periods, last quarter before "
           "the first event (or the end)"),
    Figure("sse_pct", "%", "the sampled Vout's mean |error| over the same window (one sample per period at the "
           "falling ctrlclk edge: carries the ripple's phase)"),
    Figure("ripple_pct", "%", "V(out) peak to peak over the same window (exact extremes per period) / vref"),
    Figure("overshoot_pct", "%", "start-up: largest period-averaged Vout above vref / vref; load and line step: "
           "above vref after a step / vref; reference step: beyond the new reference / the step size"),
    Figure("undershoot_pct", "%", "load and line step: largest period-averaged Vout below vref after a step / vref"),
    Figure("settle_ms", "ms", "start-up: time until Vout_avg stays within the band; reference step: after each "
           "step, until within the band of the new reference (the worst)"),
    Figure("step_dev_pct", "%", "load and line step: largest |Vout_avg - vref| after a step / vref"),
    Figure("recovery_ms", "ms", "load and line step: time after a step until Vout_avg stays within the band"),
    Figure("line_reg_pct_per_V", "%/V", "|dVout_dc / dVin| / vref between the two input levels"),
    Figure("load_reg_pct_per_A", "%/A", "|dVout_dc / dIout| / vref between the two load levels"),
    Figure("saturated_ms", "ms", "time the applied duty sits at 0 or 1"),
    Figure("duty_swing_pct", "%", "the applied duty's mean change from one period to the next at the settled end of "
           "each level (the last quarter before each event and before the end; the largest), % of full duty: a "
           "settled loop holds its duty, a subharmonic (period-2) oscillation alternates it while the "
           "period-averaged Vout barely moves"),
    Figure("max_dev_pct", "%", "long run: largest |Vout_avg - vref| / vref from judge_from_ms on"),
    Figure("max_abs_input", "", "long run: largest |NN input| from judge_from_ms on (NN only; inputs are / vmax)"),
    Figure("crossover_Hz", "Hz", "loop gain: the 0 dB crossover"),
    Figure("phase_margin_deg", "deg", "loop gain: phase margin at the crossover"),
    Figure("gain_margin_dB", "dB", "loop gain: gain margin at the -180 degree crossing (inf: the phase does not "
           "reach -180 degrees in the measured range)"),
)}

_COMMON = ("dc_error_pct", "sse_pct", "ripple_pct", "saturated_ms", "duty_swing_pct")
SCENARIO_FIGURES = {
    "startup": _COMMON + ("overshoot_pct", "settle_ms"),
    "loadstep": _COMMON + ("overshoot_pct", "undershoot_pct", "step_dev_pct", "recovery_ms", "load_reg_pct_per_A"),
    "linestep": _COMMON + ("overshoot_pct", "undershoot_pct", "step_dev_pct", "recovery_ms", "line_reg_pct_per_V"),
    "refstep": _COMMON + ("overshoot_pct", "settle_ms"),
    "longrun": _COMMON + ("overshoot_pct", "settle_ms", "max_dev_pct", "max_abs_input"),
    "fra": ("crossover_Hz", "phase_margin_deg", "gain_margin_dB"),
}


def figures_of(scenario: str) -> tuple[str, ...]:
    """The figures a scenario yields."""
    return SCENARIO_FIGURES[get_scenario(scenario).name]


def period_means(t: np.ndarray, v: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """(end time, mean) of ``v`` over each whole period [k T, (k+1) T) of a uniform grid (incomplete periods are
    left out)."""
    k = np.floor(t / period + 1e-6).astype(np.int64)
    counts = np.bincount(k)
    sums = np.bincount(k, weights=v)
    whole = np.flatnonzero(counts == np.bincount(counts).argmax()) if len(counts) else np.array([], int)
    whole = whole[counts[whole] > 0]
    return (whole + 1) * period, sums[whole] / counts[whole]


def last_outside(t: np.ndarray, dev: np.ndarray, band: float, t0: float) -> float:
    """Time (s) after ``t0`` from which |dev| stays within ``band``; 0 when always, inf when it ends outside."""
    outside = np.flatnonzero(np.abs(dev) > band)
    if len(outside) == 0:
        return 0.0
    if outside[-1] == len(dev) - 1:
        return math.inf
    return max(0.0, float(t[outside[-1] + 1] - t0))


def _window(t: np.ndarray, a: float, b: float) -> np.ndarray:
    return (t > a + 1e-12) & (t <= b + 1e-12)


def _dc(tm: np.ndarray, vm: np.ndarray, end: float, start: float) -> float:
    """Vout_dc: the period means over the last REG_WINDOW (at most a quarter of [start, end)) before ``end``."""
    span = min(REG_WINDOW, (end - start) / 4)
    sel = _window(tm, end - span, end)
    return float(vm[sel].mean()) if sel.any() else math.nan


def reference_at(ep: Episode, t: np.ndarray) -> np.ndarray:
    """The reference profile at ``t`` (the scenario's part, as the fast model reads it)."""
    from ..pwl.circuit import scenario_signals
    sig = scenario_signals(get_scenario(ep.scenario), ep.params, settings=ep.settings)
    return np.interp(t, sig.ref_t, sig.ref_v)


def episode_figures(ep: Episode, band_pct: float = BAND_PCT) -> dict[str, float]:
    """The figures of one episode run with ``keep_waveforms`` (``figures_of(ep.scenario)``)."""
    s = get_scenario(ep.scenario)
    if ep.waveforms is None or EXTREMES[0] not in ep.rows:
        raise ValueError("episode_figures needs the waveform: run the episode with keep_waveforms=True")
    p, st, vref = ep.params, ep.settings, ep.params.vref
    per = 1 / p.fsw
    band = band_pct / 100 * vref
    tm, vm = period_means(ep.waveforms["time"].to_numpy(), ep.waveforms["V(out)"].to_numpy(), per)
    rows, tr = ep.rows, ep.rows["time"].to_numpy()
    events = s.events_at(st)
    end = p.duration
    first = events[0][1] if events else end
    out: dict[str, float] = {}
    # the settled start-up: the last quarter before the first event (or the end)
    q0 = first - first / 4
    sel = _window(tm, q0, first)
    out["dc_error_pct"] = abs(vm[sel].mean() - vref) / vref * 100 if sel.any() else math.nan
    rsel = _window(tr, q0, first)
    vs = rows["V(out)"].to_numpy()
    out["sse_pct"] = float(np.abs(vs[rsel] - vref).mean() / vref * 100) if rsel.any() else math.nan
    lo, hi = rows[EXTREMES[0]].to_numpy(), rows[EXTREMES[1]].to_numpy()
    out["ripple_pct"] = float((np.nanmax(hi[rsel]) - np.nanmin(lo[rsel])) / vref * 100) if rsel.any() else math.nan
    duty = rows["V(duty)"].to_numpy()
    out["saturated_ms"] = float(((duty <= SAT_TOL) | (duty >= 1 - SAT_TOL)).sum() * per * 1e3)
    out["duty_swing_pct"] = duty_swing(tr, duty, [0.0] + [t for _, t in events] + [end])
    if s.name in ("startup", "longrun"):
        pre = tm <= first + 1e-12
        out["overshoot_pct"] = max(0.0, float((vm[pre].max() - vref) / vref * 100))
        out["settle_ms"] = last_outside(tm[pre], vm[pre] - vref, band, 0.0) * 1e3
    if s.name == "longrun":
        late = tm >= st["judge_from_ms"] * 1e-3
        out["max_dev_pct"] = float(np.abs(vm[late] - vref).max() / vref * 100) if late.any() else math.nan
        rlate = tr >= st["judge_from_ms"] * 1e-3
        out["max_abs_input"] = float(np.abs(ep.x[rlate]).max()) if ep.x.shape[1] and rlate.any() else math.nan
    if events:
        out |= _event_figures(ep, s, tm, vm, events, end, band)
    return out


def duty_swing(t: np.ndarray, duty: np.ndarray, bounds: list[float]) -> float:
    """The largest, over the settled end of each level (the last quarter of each interval between ``bounds``), of
    the duty's mean |change| from one period to the next, % of full duty (nan where no level has two rows)."""
    swings = []
    for a, b in zip(bounds, bounds[1:]):
        d = duty[_window(t, b - (b - a) / 4, b)]
        if len(d) > 1:
            swings.append(float(np.abs(np.diff(d)).mean() * 100))
    return max(swings) if swings else math.nan


def _event_figures(ep: Episode, s, tm, vm, events, end, band) -> dict[str, float]:
    vref, st = ep.params.vref, ep.settings
    target = reference_at(ep, tm)
    bounds = [t for _, t in events] + [end]
    over, under, dev, rec = [], [], [], []
    for (_, t0), t1 in zip(events, bounds[1:]):
        sel = _window(tm, t0, t1)
        d = vm[sel] - target[sel]
        before = float(np.interp(t0 - 1e-9, tm, target))
        after = float(target[sel][-1])
        if s.name == "refstep":  # beyond the new reference, in the step's direction, per step size
            size = after - before
            over.append(max(0.0, float((np.sign(size) * d).max() / abs(size) * 100)))
            rec.append(last_outside(tm[sel], d, band, t0) * 1e3)
            continue
        over.append(max(0.0, float(d.max() / vref * 100)))
        under.append(max(0.0, float(-d.min() / vref * 100)))
        dev.append(float(np.abs(d).max() / vref * 100))
        rec.append(last_outside(tm[sel], d, band, t0) * 1e3)
    if s.name == "refstep":
        return {"overshoot_pct": max(over), "settle_ms": max(rec)}
    out = {"overshoot_pct": max(over), "undershoot_pct": max(under), "step_dev_pct": max(dev),
           "recovery_ms": max(rec)}
    # regulation: Vout_dc at the end of the level before the first step and at the end of the stepped level
    (_, t_a), (_, t_b) = events[0], events[1]
    dv = _dc(tm, vm, t_b, t_a) - _dc(tm, vm, t_a, 0.0)
    if s.name == "linestep":
        vin_b = min(ep.params.vin * (1 + st["step_pct"] / 100), ep.params.vmax)
        out["line_reg_pct_per_V"] = abs(dv / (vin_b - ep.params.vin)) / vref * 100
    else:
        di = vref / st["heavy_ohm"] - vref / st["light_ohm"]
        out["load_reg_pct_per_A"] = abs(dv / di) / vref * 100
    return out
