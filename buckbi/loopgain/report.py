"""fra.csv (one row per point and frequency), margins.csv (one row per point and controller), fra.html (Bode)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..fsutil import atomic_write_text
from ..train.plots import write_html
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


def margins_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per point and controller: crossover, phase margin, gain margin (empty where it does not exist)."""
    rows = []
    for (point, who), part in long.groupby(["point", "controller"], sort=True):
        part = part.sort_values("f_Hz")
        T = 10 ** (part["gain_dB"].to_numpy() / 20) * np.exp(1j * np.radians(part["phase_deg"].to_numpy()))
        rows.append({"point": point, "controller": who} | margins(part["f_Hz"].to_numpy(), T).row()
                    | {"failed_frequencies": int(part["error"].astype(bool).sum())})
    return pd.DataFrame(rows)


def bode_figure(long: pd.DataFrame, marg: pd.DataFrame) -> go.Figure:
    """Gain and phase per point, NN beside the teacher, each crossover marked."""
    points = sorted(long["point"].unique())
    fig = make_subplots(rows=2, cols=len(points), shared_xaxes=True, vertical_spacing=0.06,
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
            if len(m) and np.isfinite(m["crossover_Hz"].iloc[0]):
                fc, pm = float(m["crossover_Hz"].iloc[0]), float(m["phase_margin_deg"].iloc[0])
                for r in (1, 2):  # (shapes take the value on a log axis, annotations its log10)
                    fig.add_vline(x=fc, line=dict(dash="dot", color=style["color"]), row=r, col=c)
                fig.add_annotation(x=np.log10(fc), y=12 if who == "teacher" else -12, xanchor="left",
                                   text=f"{who}: fc {fc:.0f} Hz, PM {pm:.0f} deg", showarrow=False,
                                   font=dict(color=style["color"], size=10), row=1, col=c)
        fig.add_hline(y=0, line=dict(color="gray", width=1), row=1, col=c)
        fig.add_hline(y=-180, line=dict(color="gray", width=1), row=2, col=c)
        span = [np.log10(long["f_Hz"].min()) - 0.05, np.log10(long["f_Hz"].max()) + 0.05]
        fig.update_xaxes(type="log", range=span, row=1, col=c)
        fig.update_xaxes(type="log", range=span, title_text="f (Hz)", row=2, col=c)
    fig.update_yaxes(title_text="|T| (dB)", row=1, col=1)
    fig.update_yaxes(title_text="phase of T (deg)", row=2, col=1)
    fig.update_layout(height=700, width=max(700, 450 * len(points)),
                      title="buckbi fra: loop gain T = -V(out)/V(vsense), injection in series with the sensed Vout")
    return fig


def _title(row) -> str:
    return f"#{int(row['point'])}: vin {row['vin']:.0f} V, vref {row['vref']:.0f} V,<br>ro {row['ro']:.3g} Ohm, " \
           f"Lo {row['Lo'] * 1e6:.0f} uH"


def write_fra_report(long: pd.DataFrame, out: str | Path) -> tuple[Path, Path, Path, pd.DataFrame]:
    """Write fra.csv, margins.csv, fra.html into ``out``; returns their paths and the margins table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marg = margins_table(long)
    csv, mcsv = out / "fra.csv", out / "margins.csv"
    atomic_write_text(csv, wide_table(long).to_csv(index=False))
    atomic_write_text(mcsv, marg.to_csv(index=False))
    html = write_html(bode_figure(long, marg), out / "fra.html")
    return csv, mcsv, html, marg
