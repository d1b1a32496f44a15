"""fra.csv (one row per point and frequency), margins.csv (one row per point and controller), fra.html (Bode)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..util.fsutil import atomic_write_text
from ..util.html import write_html
from .margins import margins

POINT_COLUMNS = ["point", "vin", "vref", "ro", "Lo"]
COLORS = {"nn": "#d62728", "teacher": "#1f77b4"}
NAMES = {"nn": "NN (deploy)", "teacher": "Type-III teacher"}


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per point and frequency: the controllers' gain and phase side by side (and any errors)."""
    values = [c for c in ("gain_dB", "phase_deg", "vsense_amp_V", "half_amplitude_dB", "half_amplitude_deg",
                          "linear", "error") if c in long]
    wide = long.pivot_table(index=POINT_COLUMNS + ["f_Hz"], columns="controller", values=values, aggfunc="first")
    wide.columns = [f"{who}_{v}" for v, who in wide.columns]
    wide = wide.reset_index()
    first = POINT_COLUMNS + ["f_Hz"] + [f"{w}_{v}" for w in ("nn", "teacher") for v in ("gain_dB", "phase_deg")]
    return wide[[c for c in first if c in wide] + [c for c in wide if c not in first]]


def margins_table(long: pd.DataFrame, th=None) -> pd.DataFrame:
    """One row per point and controller: crossover, phase margin, gain margin (empty where it does not exist);
    with thresholds ``th`` (buckbi.evaluation.evaluate.Thresholds) a ``misses`` column saying why a row fails."""
    rows = []
    for (point, who), part in long.groupby(["point", "controller"], sort=True):
        part = part.sort_values("f_Hz")
        T = 10 ** (part["gain_dB"].to_numpy() / 20) * np.exp(1j * np.radians(part["phase_deg"].to_numpy()))
        failed = part["error"].astype(bool)
        row = {"point": point, "controller": who} | margins(part["f_Hz"].to_numpy(), T).row() \
            | {"failed_frequencies": int(failed.sum())}
        if th is not None:
            why = [f"{int(failed.sum())} of {len(part)} frequencies failed: {part.loc[failed, 'error'].iloc[0]}"] \
                if failed.any() else []
            wide = pd.DataFrame([{f"x_{k}": v for k, v in row.items() if k not in ("point", "controller")}])
            found = th.misses(wide, who="x")
            row["misses"] = "; ".join(why + ([found["misses"].iloc[0]] if len(found) else []))
        rows.append(row)
    return pd.DataFrame(rows)


def bode_figure(long: pd.DataFrame, marg: pd.DataFrame, th=None) -> go.Figure:
    """Gain and phase per point, NN beside the teacher; crossover and phase crossover marked, the phase-margin
    limit drawn."""
    points = sorted(long["point"].unique())
    fig = make_subplots(rows=2, cols=len(points), shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[_title(long[long["point"] == p].iloc[0]) for p in points])
    for c, p in enumerate(points, start=1):
        for who, part in long[long["point"] == p].groupby("controller"):
            part = part.sort_values("f_Hz")
            style = dict(color=COLORS.get(who, "gray"))
            fig.add_trace(go.Scatter(x=part["f_Hz"], y=part["gain_dB"], name=NAMES.get(who, who), legendgroup=who,
                                     showlegend=c == 1, mode="lines+markers", line=style), row=1, col=c)
            fig.add_trace(go.Scatter(x=part["f_Hz"], y=part["phase_deg"], name=NAMES.get(who, who), legendgroup=who,
                                     showlegend=False, mode="lines+markers", line=style), row=2, col=c)
            m = marg[(marg["point"] == p) & (marg["controller"] == who)]
            if not len(m):
                continue
            m = m.iloc[0]
            if np.isfinite(m["crossover_Hz"]):  # the phase margin: an arrow from -180 to the phase at fc
                fc, pm = float(m["crossover_Hz"]), float(m["phase_margin_deg"])
                fig.add_trace(go.Scatter(x=[fc, fc], y=[-180, -180 + pm], mode="lines+markers", showlegend=False,
                                         line=dict(color=style["color"], width=3), marker=dict(symbol="line-ew-open"),
                                         hovertemplate=f"{who}: fc {fc:.0f} Hz, PM {pm:.1f} deg<extra></extra>"),
                              row=2, col=c)
                fig.add_trace(go.Scatter(x=[fc], y=[0], mode="markers", showlegend=False,
                                         marker=dict(color=style["color"], size=9, symbol="circle-open"),
                                         hovertemplate=f"{who}: crossover {fc:.0f} Hz<extra></extra>"), row=1, col=c)
            if np.isfinite(m.get("gain_margin_dB", np.nan)):  # the gain margin: an arrow from |T| to 0 dB
                fg, gm = float(m["gain_margin_Hz"]), float(m["gain_margin_dB"])
                fig.add_trace(go.Scatter(x=[fg, fg], y=[-gm, 0], mode="lines+markers", showlegend=False,
                                         line=dict(color=style["color"], width=3, dash="dot"),
                                         marker=dict(symbol="line-ew-open"),
                                         hovertemplate=f"{who}: GM {gm:.1f} dB at {fg:.0f} Hz<extra></extra>"),
                              row=1, col=c)
        fig.add_hline(y=0, line=dict(color="gray", width=1), row=1, col=c)
        fig.add_hline(y=-180, line=dict(color="gray", width=1), row=2, col=c)
        if th is not None:  # the phase-margin limit: the phase at crossover must stay above it
            fig.add_hline(y=-180 + th.min_phase_margin_deg, line=dict(color="red", width=1, dash="dash"),
                          row=2, col=c)
        span = [np.log10(long["f_Hz"].min()) - 0.05, np.log10(long["f_Hz"].max()) + 0.05]
        fig.update_xaxes(type="log", range=span, row=1, col=c)
        fig.update_xaxes(type="log", range=span, title_text="f (Hz)", row=2, col=c)
    fig.update_yaxes(title_text="|T| (dB)", row=1, col=1)
    fig.update_yaxes(title_text="phase of T (deg)", row=2, col=1)
    fig.update_layout(height=760, legend=dict(orientation="h", x=0, y=-0.1), margin=dict(t=110),
                      title="buckbi fra: loop gain T = -V(out)/V(vsense), injection in series with the sensed Vout")
    return fig


def fra_header(marg: pd.DataFrame, th) -> str:
    """The page's verdict, the limits and a line per point and controller with its margins (or why it has none)."""
    from ..util.html import verdict_header
    nn = marg[marg["controller"] == "nn"]
    reasons = [f"point {int(r.point)}: {r.misses}" for r in nn.itertuples() if r.misses]
    lines = []
    for r in marg.itertuples():
        fig = (f"fc {r.crossover_Hz:.0f} Hz, PM {r.phase_margin_deg:.1f} deg" if np.isfinite(r.crossover_Hz)
               else "no crossover in range")
        fig += f", GM {r.gain_margin_dB:.1f} dB" if np.isfinite(r.gain_margin_dB) else ", no phase crossover (GM inf)"
        lines.append(f"point {int(r.point)} {NAMES.get(r.controller, r.controller)}: {fig}"
                     + (f" - {r.misses}" if r.misses else ""))
    headline = (f"the NN meets the loop-gain limits at all {len(nn)} points" if not reasons else
                f"the NN misses the loop-gain limits at {len(reasons)} of {len(nn)} points")
    return verdict_header("buckbi fra: loop gain, NN beside the teacher", not reasons, headline,
                          th.text("fra") + " (dashed red: the phase at crossover must stay above -180 + PM limit; "
                          "solid bars: phase margin, dotted bars: gain margin)", lines)


def _title(row) -> str:
    return f"#{int(row['point'])}: vin {row['vin']:.0f} V, vref {row['vref']:.0f} V,<br>ro {row['ro']:.3g} Ohm, " \
           f"Lo {row['Lo'] * 1e6:.0f} uH"


def write_fra_report(long: pd.DataFrame, out: str | Path, th=None) -> tuple[Path, Path, Path, pd.DataFrame]:
    """Write fra.csv, margins.csv, fra.html into ``out``; returns their paths and the margins table."""
    if th is None:
        from ..evaluation.thresholds import Thresholds
        th = Thresholds()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marg = margins_table(long, th)
    csv, mcsv = out / "fra.csv", out / "margins.csv"
    atomic_write_text(csv, wide_table(long).to_csv(index=False))
    atomic_write_text(mcsv, marg.to_csv(index=False))
    html = write_html(bode_figure(long, marg, th), out / "fra.html", header=fra_header(marg, th))
    return csv, mcsv, html, marg
