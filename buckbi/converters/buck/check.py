"""``buckbi converter check``: a converter's teacher at the corners of its ranges — its values, its loop gain and
margins (POP + AC on the fast model), its start-up — and whether it regulates and meets its design target."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .converter import Converter

MAX_DUTY = 0.93  # the highest vref a corner takes: this share of its vin (the default plan's 140 V at 150 V)
DC_ERROR_PCT = 1.0  # the teacher regulates: |Vout_dc - vref| within this, settled before the run's last quarter
TARGET = (0.10, 5.0)  # a designed teacher meets its target: crossover within 10 %, phase margin within 5 degrees


@dataclass(frozen=True)
class CheckResult:
    """The corners' figures and the verdict's reasons (empty: the teacher passes)."""

    table: pd.DataFrame
    centre: dict
    failures: list[str]


def corners(conv: Converter) -> dict[str, dict[str, float]]:
    """The ranges' corners (vin and vref low/high, full and light load, Lo at its centre) and the centre; a vref
    above MAX_DUTY of the corner's vin is lowered to it."""
    r, c = conv.ranges, conv.centre
    out = {"centre": dict(c)}
    for vin in r["vin"]:
        for vref in r["vref"]:
            v = min(vref, MAX_DUTY * vin)
            for load, ro in (("full", r["ro"][0]), ("light", r["ro"][1])):
                out[f"vin{vin:g}-vref{v:.4g}-{load}"] = {"vin": vin, "vref": v, "ro": ro, "Lo": c["Lo"]}
    return out


def frequencies(conv: Converter) -> np.ndarray:
    """The loop gain's grid: fsw/5000 .. fsw/2.5, 24 points per decade."""
    return np.geomspace(conv.fsw / 5e3, conv.fsw / 2.5, 8 * 3 * 3 + 1)


def startup_periods(conv: Converter) -> int:
    """Control periods of the start-up run: three soft starts plus 100 periods of the design crossover (or 40 ms at
    the reference's 2.5 kHz crossover where the teacher was given as values)."""
    fc = conv.design_target[0] if conv.design_target else 2.5e3
    return int(math.ceil((3 * conv.soft_start_ms * 1e-3 + 100 / fc) * conv.fsw))


def check_converter(conv: Converter, workdir: str | Path) -> CheckResult:
    """The teacher's loop gain and start-up at every corner, and the verdict's reasons."""
    from ...episodes.run import run_episodes
    from ...evaluation.figures import episode_figures
    from ...loopgain.margins import margins
    from ...loopgain.pop import PopError, loop_gain
    points = corners(conv)
    f = frequencies(conv)
    steps = startup_periods(conv)
    rows = []
    params = [conv.params(**p, steps=steps) for p in points.values()]
    eps = run_episodes("teacher", None, params, Path(workdir), "pwl", scenario="startup",
                       settings=[{"soft_start_ms": conv.soft_start_ms}] * len(params), parallel=len(params),
                       keep_waveforms=True)
    for (name, point), p, ep in zip(points.items(), params, eps):
        row = {"corner": name, **point, "mode": "", "crossover_Hz": math.nan, "phase_margin_deg": math.nan,
               "gain_margin_dB": math.nan}
        try:
            m = margins(f, loop_gain("teacher", None, p, f).T)
            row |= m.row()
            row.pop("gain_margin_Hz")
        except PopError as err:
            row["mode"] = f"no orbit: {str(err).split(':')[0]}"
        if isinstance(ep, Exception):
            row |= {"dc_error_pct": math.nan, "overshoot_pct": math.nan, "settle_ms": math.nan, "error": str(ep)}
        else:
            fig = episode_figures(ep)
            row |= {k: fig[k] for k in ("dc_error_pct", "overshoot_pct", "settle_ms")}
        rows.append(row)
    table = pd.DataFrame(rows)
    failures = []
    quarter = 0.75 * steps / conv.fsw * 1e3
    for r in table.itertuples():
        if not (r.dc_error_pct <= DC_ERROR_PCT and r.settle_ms <= quarter):
            failures.append(f"{r.corner}: the teacher does not regulate (DC error {r.dc_error_pct:.3g} %, settles "
                            f"{r.settle_ms:.3g} ms; limits {DC_ERROR_PCT:g} %, {quarter:.3g} ms)")
        if np.isfinite(r.phase_margin_deg) and r.phase_margin_deg <= 0:
            failures.append(f"{r.corner}: the teacher's loop is unstable (phase margin {r.phase_margin_deg:.3g} deg)")
    centre = table.iloc[0].to_dict()
    if conv.design_target:
        fc, pm = conv.design_target
        got_fc, got_pm = centre["crossover_Hz"], centre["phase_margin_deg"]
        if not (abs(got_fc / fc - 1) <= TARGET[0] and abs(got_pm - pm) <= TARGET[1]):
            failures.append(f"centre: the designed teacher misses its target: crossover {got_fc:.4g} Hz (asked {fc:g}, "
                            f"within {TARGET[0]:.0%}), phase margin {got_pm:.3g} deg (asked {pm:g}, within "
                            f"{TARGET[1]:g})")
    return CheckResult(table, centre, failures)
