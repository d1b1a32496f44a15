"""``sweep.html``: heatmaps per figure over two axes (the rest aggregated by worst case), NN beside teacher,
the region that misses the thresholds outlined; and a PNG of the same for documents."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..converters.buck.spec import AXES
from ..evaluation.evaluate import LOWER_LIMITS, figure_names
from ..evaluation.thresholds import Thresholds, thresholds_header
from ..util.html import write_html

UNITS = {"sse_%": "steady-state error, % of vref", "overshoot_%": "overshoot, % of vref",
         "settle_ms": "2 % settling time, ms", "up_dev_%": "step up: largest |Vout-vref|, % of vref",
         "up_rec_ms": "step up: recovery, ms", "down_dev_%": "step down: largest |Vout-vref|, % of vref",
         "down_rec_ms": "step down: recovery, ms", "crossover_Hz": "loop gain: crossover, Hz",
         "phase_margin_deg": "loop gain: phase margin, deg", "gain_margin_dB": "loop gain: gain margin, dB",
         "gain_margin_Hz": "loop gain: phase crossover, Hz"}


def limits(th: Thresholds) -> dict[str, float]:
    """The threshold of each figure (settling: only that it settles; the margins: lower limits)."""
    return {f: th.limit(f) for f in UNITS}


def misses_limit(z: np.ndarray, figure: str, lim: float) -> np.ndarray:
    """Cells beyond the figure's threshold (above an upper, below a lower limit; never/failed for settling)."""
    if figure in LOWER_LIMITS:
        return ~(z >= lim) & ~np.isnan(z)
    return (~(z <= lim) if np.isfinite(lim) else np.isinf(z)) & ~np.isnan(z)


def worst_case(table: pd.DataFrame, x: str, y: str, column: str) -> pd.DataFrame:
    """Matrix of ``column`` over (y, x): the worst value over the other axes (the largest; the smallest for a
    margin); a failed run counts as the worst (inf, -inf for a margin), a combination without points (vref >= vin)
    is NaN."""
    lower = any(column.endswith(f) for f in LOWER_LIMITS)
    data = table[[x, y, column]].copy()
    data[column] = pd.to_numeric(data[column], errors="coerce").fillna(-np.inf if lower else np.inf)
    grouped = data.groupby([y, x])[column]
    return (grouped.min() if lower else grouped.max()).unstack(x).sort_index().sort_index(axis=1)


def sweep_figure(table: pd.DataFrame, x: str, y: str, scenario: str, th: Thresholds) -> go.Figure:
    figs = figure_names(scenario)
    lim = limits(th)
    fig = make_subplots(rows=len(figs), cols=2, horizontal_spacing=0.12, vertical_spacing=0.3 / len(figs),
                        subplot_titles=[f"{who}: {UNITS[f]}" for f in figs for who in ("NN (deploy)", "teacher")])
    for r, f in enumerate(figs, start=1):
        mats = {who: worst_case(table, x, y, f"{who}_{f}") for who in ("nn", "teacher")}
        finite = np.concatenate([m.to_numpy()[np.isfinite(m.to_numpy())] for m in mats.values()] or [np.zeros(1)])
        zmax = float(np.nanmax(finite)) if finite.size else 1.0
        for c, who in enumerate(("nn", "teacher"), start=1):
            m = mats[who]
            z = m.to_numpy(dtype=float)
            shown = np.where(np.isinf(z), zmax * 1.1, z)  # never / failed: above the scale; no point: a gap
            text = np.where(np.isfinite(z), np.round(z, 2).astype(str), np.where(np.isnan(z), "", "never"))
            fig.add_trace(go.Heatmap(z=shown, x=m.columns, y=m.index, text=text, texttemplate="%{text}",
                                     zmin=0, zmax=zmax * 1.1 or 1.0, colorscale="Viridis", showscale=c == 2,
                                     colorbar=dict(len=0.9 / len(figs), y=1 - (r - 0.5) / len(figs)),
                                     name=f"{who} {f}", hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{f}=%{{text}}"),
                          row=r, col=c)
            miss = misses_limit(z, f, lim[f])
            if miss.any():  # outline the cells that miss the threshold; their numbers in red, nothing drawn on them
                fig.add_trace(go.Contour(z=miss.astype(float), x=m.columns, y=m.index, showscale=False,
                                         showlegend=False, contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
                                         line=dict(color="red", width=3), hoverinfo="skip",
                                         name=f"misses {f}"), row=r, col=c)
                ys, xs = np.nonzero(miss)
                fig.add_trace(go.Scatter(x=m.columns[xs], y=m.index[ys], mode="text", text=text[ys, xs],
                                         textfont=dict(color="red", size=12), showlegend=False, hoverinfo="skip"),
                              row=r, col=c)
            fig.update_xaxes(title_text=x, row=r, col=c)
            fig.update_yaxes(title_text=y, row=r, col=c)
    fig.update_layout(height=380 * len(figs), showlegend=False, margin=dict(t=60, r=40),
                      title=f"buckbi sweep ({scenario}): worst case over the other axes")
    return fig


def sweep_header(table: pd.DataFrame, scenario: str, th: Thresholds) -> str:
    """The page's verdict: the points where the NN misses the thresholds (outlined in red), and why."""
    return thresholds_header(f"buckbi sweep ({scenario})", table, th, scenario,
                             lambda r: f"vin {r.vin:g} V, vref {r.vref:g} V, ro {r.ro:g} Ohm, Lo {r.Lo * 1e6:g} uH",
                             " (cells that miss: outlined in red)")


def choose_axes(table: pd.DataFrame, axes: str | None) -> tuple[str, str]:
    """``"vin,vref"`` or the first two axes that vary in the table."""
    if axes:
        names = [a.strip() for a in axes.split(",")]
        if len(names) != 2 or any(n not in AXES for n in names):
            raise ValueError(f"--axes takes two of {', '.join(AXES)}, got {axes!r}")
        return names[0], names[1]
    varying = [a for a in AXES if a in table and table[a].nunique() > 1]
    rest = [a for a in AXES if a not in varying]
    x, y = (varying + rest)[:2]
    return x, y


def write_sweep_report(table: pd.DataFrame, out: str | Path, scenario: str, th: Thresholds,
                       axes: str | None = None) -> Path:
    x, y = choose_axes(table, axes)
    return write_html(sweep_figure(table, x, y, scenario, th), Path(out) / "sweep.html",
                      header=sweep_header(table, scenario, th))


def sweep_png(table: pd.DataFrame, path: str | Path, scenario: str, th: Thresholds, axes: str | None = None,
              figure: str = "sse_%") -> Path:
    """One figure's NN/teacher heatmaps as a PNG (matplotlib), for the README."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = choose_axes(table, axes)
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    mats = {who: worst_case(table, x, y, f"{who}_{figure}") for who in ("nn", "teacher")}
    vmax = max(float(np.nanmax(np.where(np.isfinite(m.to_numpy()), m.to_numpy(), np.nan))) for m in mats.values())
    lim = limits(th)[figure]
    for ax, (who, m) in zip(axs, mats.items()):
        z = m.to_numpy(dtype=float)
        im = ax.pcolormesh(m.columns, m.index, np.ma.masked_invalid(np.where(np.isinf(z), vmax, z)), vmin=0,
                           vmax=vmax, shading="nearest", cmap="viridis")
        for (i, j), v in np.ndenumerate(z):
            if np.isnan(v):
                ax.text(m.columns[j], m.index[i], "no point", ha="center", va="center", fontsize=7, color="gray")
                continue
            bad = bool(misses_limit(np.array([v]), figure, lim)[0])
            ax.text(m.columns[j], m.index[i], "never" if np.isinf(v) else f"{v:.2f}", ha="center",
                    va="center", fontsize=7, color="red" if bad else "white", fontweight="bold" if bad else None)
        ax.set_title(f"{'NN (deploy)' if who == 'nn' else 'Type-III teacher'}: {UNITS[figure]}", fontsize=9)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
    fig.colorbar(im, ax=axs, shrink=0.9)
    fig.suptitle(f"worst case over the other axes; red: above {lim:g}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
