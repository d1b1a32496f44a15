"""``buckbi evaluate``: the NN alone (deploy circuit) against the teacher on held-out operating points."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn

from .episode import Episode, EpisodeParams, run_episodes
from .fsutil import atomic_write_text
from .train.plots import write_html

SETTLE_BAND = 0.02  # settling: |Vout - vref| stays within 2 % of vref
EVAL_STREAM = 0xE7A1  # keeps evaluation draws apart from training draws (rng([seed, episode]))


@dataclass
class Response:
    """Step-response figures of one episode's sampled Vout."""

    steady_state_error_pct: float
    overshoot_pct: float
    settling_time_ms: float


def response(rows: pd.DataFrame, vref: float) -> Response:
    """Steady-state error (mean over the last quarter), overshoot over vref and 2 % settling time."""
    t, v = rows["time"].to_numpy(), rows["V(out)"].to_numpy()
    err = np.abs(v[-max(1, len(v) // 4):] - vref).mean() / vref * 100
    overshoot = max(0.0, (v.max() - vref) / vref * 100)
    outside = np.flatnonzero(np.abs(v - vref) > SETTLE_BAND * vref)
    if len(outside) == 0:
        settle = t[0]
    elif outside[-1] == len(v) - 1:
        settle = np.inf  # never settled within the episode
    else:
        settle = t[outside[-1] + 1]
    return Response(float(err), float(overshoot), float(settle * 1e3))


def held_out_points(n: int, seed: int, steps: int) -> list[EpisodeParams]:
    return [EpisodeParams.random(np.random.default_rng([seed, EVAL_STREAM, k]), steps=steps) for k in range(n)]


def evaluate(actor: nn.Module, points: list[EpisodeParams], workdir: str | Path, simulator: str | None = None,
             jobs: int = 2, timeout: float = 900.0) -> tuple[pd.DataFrame, list, list]:
    """Run deploy (NN) and teacher on ``points``; a table with one row per point and both responses."""
    workdir = Path(workdir)
    nn_eps = run_episodes("deploy", actor, points, workdir / "sim", simulator, parallel=jobs, timeout=timeout)
    teacher_eps = run_episodes("teacher", None, points, workdir / "sim", simulator, parallel=jobs, timeout=timeout)
    shutil.rmtree(workdir / "sim", ignore_errors=True)
    rows = []
    for k, (p, a, b) in enumerate(zip(points, nn_eps, teacher_eps)):
        row = {"point": k + 1, "vin": p.vin, "ro": p.ro, "Lo_uH": p.Lo * 1e6, "vref": p.vref}
        for who, ep in (("nn", a), ("teacher", b)):
            if isinstance(ep, Episode):
                r = response(ep.rows, p.vref)
                row |= {f"{who}_sse_%": r.steady_state_error_pct, f"{who}_overshoot_%": r.overshoot_pct,
                        f"{who}_settle_ms": r.settling_time_ms}
            else:
                row |= {f"{who}_sse_%": np.nan, f"{who}_overshoot_%": np.nan, f"{who}_settle_ms": np.nan,
                        f"{who}_error": f"{type(ep).__name__}: {str(ep).splitlines()[0][:200]}"}
        rows.append(row)
    return pd.DataFrame(rows), nn_eps, teacher_eps


def evaluation_figure(points: list[EpisodeParams], nn_eps: list, teacher_eps: list) -> go.Figure:
    """Vout of NN and teacher per operating point, with vref."""
    cols = min(3, len(points))
    nrows = -(-len(points) // cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=[
        f"#{k + 1}: vin={p.vin:.0f} V, ro={p.ro:.0f} Ohm, vref={p.vref:.0f} V" for k, p in enumerate(points)])
    for k, (p, a, b) in enumerate(zip(points, nn_eps, teacher_eps)):
        r, c = k // cols + 1, k % cols + 1
        for ep, name, color in ((b, "teacher", "#1f77b4"), (a, "NN (deploy)", "#d62728")):
            if isinstance(ep, Episode):
                fig.add_trace(go.Scatter(x=ep.rows["time"] * 1e3, y=ep.rows["V(out)"], name=name, legendgroup=name,
                                         showlegend=k == 0, line=dict(color=color)), row=r, col=c)
        fig.add_hline(y=p.vref, line=dict(dash="dot", color="gray"), row=r, col=c)
    fig.update_xaxes(title_text="time (ms)")
    fig.update_yaxes(title_text="Vout (V)")
    fig.update_layout(height=320 * nrows, title="buckbi evaluate: NN alone vs Type-III teacher")
    return fig


def write_report(table: pd.DataFrame, fig: go.Figure, outdir: str | Path) -> tuple[Path, Path]:
    outdir = Path(outdir)
    csv = outdir / "evaluate.csv"
    atomic_write_text(csv, table.to_csv(index=False))
    return csv, write_html(fig, outdir / "evaluate_plot.html")
