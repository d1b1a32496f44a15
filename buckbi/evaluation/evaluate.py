"""``buckbi evaluate``: the NN alone (deploy circuit) against the teacher on held-out operating points.

Figures come from the sampled rows (Vout once per control period at the falling ctrlclk edge, as the
controller sees it), so the switching ripple does not enter them.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..contract import Episode
from ..converters.buck.converter import Converter, reference
from ..converters.buck.scenarios import get_scenario, scenario_params
from ..converters.buck.spec import EpisodeParams
from ..episodes.run import Actor, run_episodes
from .figures import last_outside
from .thresholds import Thresholds, thresholds_header
from ..util.fsutil import atomic_write_text
from ..util.html import write_html

SETTLE_BAND = 0.02  # settling and recovery: |Vout - vref| within 2 % of vref
EVAL_STREAM = 0xE7A1  # keeps evaluation draws apart from training draws (rng([seed, episode]))


@dataclass
class Response:
    """Start-up figures of one episode's sampled Vout."""

    steady_state_error_pct: float
    overshoot_pct: float
    settling_time_ms: float


@dataclass
class StepResponse:
    """Figures of one load step: largest |Vout - vref| after it and the time until back inside the band."""

    deviation_pct: float
    recovery_ms: float


def _last_outside(t: np.ndarray, v: np.ndarray, vref: float, t0: float) -> float:
    """Time (s) after ``t0`` from which Vout stays inside the band; inf when it ends outside."""
    return last_outside(t, v - vref, SETTLE_BAND * vref, t0)


def response(rows: pd.DataFrame, vref: float, until: float | None = None) -> Response:
    """Steady-state error (mean over the last quarter), overshoot over vref and 2 % settling time, up to ``until``."""
    if until is not None:
        rows = rows[rows["time"] < until]
    t, v = rows["time"].to_numpy(), rows["V(out)"].to_numpy()
    err = np.abs(v[-max(1, len(v) // 4):] - vref).mean() / vref * 100
    overshoot = max(0.0, (v.max() - vref) / vref * 100)
    settle = _last_outside(t, v, vref, 0.0) if len(v) else math.inf
    return Response(float(err), float(overshoot), settle * 1e3)


def step_response(rows: pd.DataFrame, vref: float, t_step: float, t_end: float) -> StepResponse:
    """Largest |Vout - vref| (% of vref) in [t_step, t_end) and the time after t_step until back within 2 %."""
    part = rows[(rows["time"] >= t_step) & (rows["time"] < t_end)]
    t, v = part["time"].to_numpy(), part["V(out)"].to_numpy()
    dev = float(np.abs(v - vref).max() / vref * 100)
    return StepResponse(dev, _last_outside(t, v, vref, t_step) * 1e3)


def figures(ep: Episode, scenario: str) -> dict[str, float]:
    """The flat figures of one episode: start-up (before the scenario's first event), then per event (a load or
    line step) its largest deviation and recovery."""
    s = get_scenario(scenario)
    vref = ep.params.vref
    events = s.events_at(ep.settings)
    r = response(ep.rows, vref, until=events[0][1] if events else None)
    out = {"sse_%": r.steady_state_error_pct, "overshoot_%": r.overshoot_pct, "settle_ms": r.settling_time_ms}
    bounds = [t for _, t in events] + [ep.params.duration]
    for (name, t0), t1 in zip(events, bounds[1:]):
        step = step_response(ep.rows, vref, t0, t1)
        out |= {f"{name}_dev_%": step.deviation_pct, f"{name}_rec_ms": step.recovery_ms}
    return out


FRA_FIGURES = ["crossover_Hz", "phase_margin_deg", "gain_margin_dB", "gain_margin_Hz"]  # scenario "fra"
LOWER_LIMITS = ("phase_margin_deg", "gain_margin_dB")  # figures whose threshold is a smallest allowed value


def figure_names(scenario: str) -> list[str]:
    if scenario == "fra":
        return list(FRA_FIGURES)
    names = ["sse_%", "overshoot_%", "settle_ms"]
    return names + [f"{n}_{f}" for n, _ in get_scenario(scenario).events for f in ("dev_%", "rec_ms")]


def held_out_points(n: int, seed: int, steps: int, conv: Converter | None = None) -> list[EpisodeParams]:
    """``n`` operating points from the converter's ranges (the reference buck's: the seed's), drawn apart from every
    training draw."""
    conv = conv or reference()
    return [conv.random_point(np.random.default_rng([seed, EVAL_STREAM, k]), steps=steps) for k in range(n)]


def scenario_points(points: list[EpisodeParams], scenario: str, settings: dict | None = None) -> list[EpisodeParams]:
    """The points run for the scenario's length (the step scenarios: 80 ms, or ``settings``' duration)."""
    return [scenario_params(p, scenario, settings) for p in points]


def evaluate(actor: Actor, points: list[EpisodeParams], workdir: str | Path, simulator=None, jobs: int = 2,
             timeout: float = 900.0, scenario: str = "startup", teacher: bool = True,
             max_step: float | None = None, settings: dict | None = None) -> tuple[pd.DataFrame, list, list]:
    """Run deploy (NN) and, unless ``teacher=False``, the teacher on ``points``; one table row per point.
    ``settings``: the scenario's (``converter_settings`` gives another converter's defaults).

    Scenario "fra": the loop gain of each (buckbi.loopgain, 10 Hz..25 kHz, 3 per octave), its margins as the row's
    figures; no episodes are returned then."""
    if scenario == "fra":
        soft = (settings or {}).get("soft_start_ms")  # converter_settings: the converter's own
        return _evaluate_fra(actor, points, workdir, simulator, jobs, timeout, teacher, max_step, soft), [], []
    points = scenario_points(points, scenario, settings)
    workdir = Path(workdir)
    sim = workdir / "sim"
    n = len(points)
    run = dict(parallel=jobs, timeout=timeout, scenario=scenario, max_step=max_step, settings=settings)
    nn_eps = run_episodes("deploy", actor, points, sim / "nn", simulator, **run)
    teacher_eps = run_episodes("teacher", None, points, sim / "teacher", simulator, **run) if teacher else [None] * n
    shutil.rmtree(sim, ignore_errors=True)
    rows = []
    for k, (p, a, b) in enumerate(zip(points, nn_eps, teacher_eps)):
        row = {"point": k + 1, "vin": p.vin, "ro": p.ro, "Lo_uH": p.Lo * 1e6, "vref": p.vref}
        for who, ep in (("nn", a), ("teacher", b)):
            if ep is None:
                continue
            if isinstance(ep, Episode):
                row |= {f"{who}_{k}": v for k, v in figures(ep, scenario).items()}
            else:
                row |= {f"{who}_{c}": np.nan for c in figure_names(scenario)}
                row[f"{who}_error"] = f"{type(ep).__name__}: {str(ep).splitlines()[0][:200]}"
        rows.append(row)
    return pd.DataFrame(rows), nn_eps, teacher_eps


def _evaluate_fra(actor, points, workdir, simulator, jobs, timeout, teacher, max_step,
                  soft_start_ms: float | None = None) -> pd.DataFrame:
    from ..loopgain import frequencies, margins_table, measure
    from ..loopgain.measure import SOFT_START_MS
    from ..loopgain.pop import applies, measure_pop
    who = ("nn", "teacher") if teacher else ("nn",)
    if applies(actor, points, simulator):  # the fast model: POP + AC, milliseconds instead of seconds per point
        res = measure_pop(actor, points, frequencies(fsw=points[0].fsw), controllers=who)
    else:
        res = measure(actor, points, frequencies(fsw=points[0].fsw), Path(workdir) / "fra", simulator, jobs=jobs,
                      controllers=who, timeout=timeout, max_step=max_step,
                      soft_start_ms=soft_start_ms if soft_start_ms is not None else SOFT_START_MS)
    shutil.rmtree(Path(workdir) / "fra", ignore_errors=True)
    marg = margins_table(res.table)
    rows = []
    for k, p in enumerate(points, 1):
        row = {"point": k, "vin": p.vin, "ro": p.ro, "Lo_uH": p.Lo * 1e6, "vref": p.vref}
        for w in who:
            m = marg[(marg["point"] == k) & (marg["controller"] == w)]
            row |= {f"{w}_{f}": float(m[f].iloc[0]) if len(m) else np.nan for f in FRA_FIGURES}
            errors = res.table[(res.table["point"] == k) & (res.table["controller"] == w)]["error"]
            if errors.astype(bool).any():
                row[f"{w}_error"] = f"{int(errors.astype(bool).sum())} frequencies failed: {errors[errors != ''].iloc[0]}"
        rows.append(row)
    return pd.DataFrame(rows)


def _evaluate_one(actor: Actor, params: EpisodeParams, simulator, timeout: float, scenario: str,
                  max_step: float | None, settings: dict | None = None) -> tuple[dict, object, object]:
    """One point on a Dask worker: its table row and both episodes (or their errors)."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="buckbi-evaluate-") as tmp:
        table, nn_eps, teacher_eps = evaluate(actor, [params], tmp, simulator, jobs=2, timeout=timeout,
                                              scenario=scenario, max_step=max_step, settings=settings)
    return table.iloc[0].to_dict(), nn_eps[0], teacher_eps[0]


def evaluate_on_dask(actor: Actor, points: list[EpisodeParams], client, simulator=None, timeout: float = 900.0,
                     scenario: str = "startup", max_step: float | None = None,
                     settings: dict | None = None) -> tuple[pd.DataFrame, list, list]:
    """``evaluate`` with one Dask task per point (the sweep's executor); the same table and episodes."""
    points = scenario_points(points, scenario, settings)
    remote = client.scatter(actor, broadcast=True, hash=False)
    futures = [client.submit(_evaluate_one, remote, p, simulator, timeout, scenario, max_step, settings, pure=False)
               for p in points]
    results = client.gather(futures)
    rows = [r | {"point": k + 1} for k, (r, _, _) in enumerate(results)]
    return pd.DataFrame(rows), [r[1] for r in results], [r[2] for r in results]


def evaluation_figure(points: list[EpisodeParams], nn_eps: list, teacher_eps: list, scenario: str = "startup",
                      th: Thresholds | None = None, misses: pd.DataFrame | None = None) -> go.Figure:
    """Vout of NN and teacher per operating point, with vref, the 2 % settling band, the overshoot limit (and the
    load steps marked); a point where the NN misses a threshold says so in its title."""
    th = th or Thresholds()
    failing = set() if misses is None else {int(p) for p in misses["point"]}
    cols = min(3, len(points))
    nrows = -(-len(points) // cols)
    fig = make_subplots(rows=nrows, cols=cols, vertical_spacing=0.12 / max(1, nrows - 1) if nrows > 1 else 0.1,
                        subplot_titles=[
        ("<b style='color:#a50e0e'>FAIL</b> " if k + 1 in failing else "") + f"#{k + 1}: vin={p.vin:.0f} V, "
        + (f"ro={p.ro:.0f} Ohm, " if scenario != "loadstep" else "") + f"vref={p.vref:.0f} V"
        for k, p in enumerate(points)])
    for k, (p, a, b) in enumerate(zip(points, nn_eps, teacher_eps)):
        r, c = k // cols + 1, k % cols + 1
        for ep, name, color in ((b, "teacher", "#1f77b4"), (a, "NN (deploy)", "#d62728")):
            if isinstance(ep, Episode):
                fig.add_trace(go.Scatter(x=ep.rows["time"] * 1e3, y=ep.rows["V(out)"], name=name, legendgroup=name,
                                         showlegend=k == 0, line=dict(color=color)), row=r, col=c)
        fig.add_hrect(y0=p.vref * (1 - SETTLE_BAND), y1=p.vref * (1 + SETTLE_BAND), line_width=0,
                      fillcolor="green", opacity=0.12, row=r, col=c)
        fig.add_hline(y=p.vref, line=dict(dash="dot", color="gray"), row=r, col=c)
        fig.add_hline(y=p.vref * (1 + th.overshoot_pct / 100), line=dict(dash="dash", color="red", width=1),
                      row=r, col=c)
        s = get_scenario(scenario)
        for j, (name, t) in enumerate(s.events_at()):
            fig.add_vline(x=t * 1e3, line=dict(dash="dash", color="green"), row=r, col=c)
            fig.add_annotation(x=t * 1e3, y=p.vref * (1.12 - 0.05 * j), text=f"{s.step} {name}", showarrow=False,
                               xanchor="left", font=dict(size=10, color="green"), row=r, col=c)
        if scenario != "startup":  # the steps are what the figures judge: show the band around vref
            fig.update_yaxes(range=[p.vref * 0.84, p.vref * 1.16], row=r, col=c)
    fig.update_xaxes(title_text="time (ms)")
    fig.update_yaxes(title_text="Vout (V)")
    fig.update_layout(height=420 * nrows + 120, margin=dict(t=80, b=90),
                      legend=dict(orientation="h", x=0, y=-0.12 if nrows == 1 else -0.05),
                      title=f"buckbi evaluate ({scenario}): NN alone vs Type-III teacher")
    return fig


def evaluation_header(table: pd.DataFrame, scenario: str, th: Thresholds) -> str:
    """The evaluate page's verdict, limits and the reason for each point the NN misses."""
    return thresholds_header(f"buckbi evaluate ({scenario})", table, th, scenario,
                             lambda r: f"point {int(r.point)} (vin {r.vin:.0f} V, vref {r.vref:.0f} V)",
                             f" (green band: +-{SETTLE_BAND * 100:g} % settling band; dashed red: the overshoot limit)")


def write_report(table: pd.DataFrame, fig: go.Figure, outdir: str | Path, header: str = "") -> tuple[Path, Path]:
    outdir = Path(outdir)
    csv = outdir / "evaluate.csv"
    atomic_write_text(csv, table.to_csv(index=False))
    return csv, write_html(fig, outdir / "evaluate_plot.html", header=header)
