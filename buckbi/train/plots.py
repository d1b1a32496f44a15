"""Training plots with plotly, written so that they open offline (no CDN)."""
from __future__ import annotations


import pandas as pd
import plotly.graph_objects as go


WAVEFORMS = (("V(nnin1)", "nnin1 (Vo/Vmax)"), ("V(nnin17)", "nnin17 (Vref/Vmax)"), ("V(nnpwm)", "nnpwm (teacher)"),
             ("V(nnout1)", "nnout1 (NN)"))


def loss_figure(log: pd.DataFrame) -> go.Figure:
    """Actor loss per episode on a log axis, one trace per gym, as the seed's loss plot."""
    fig = go.Figure()
    ok = log[log["status"] == "ok"] if "status" in log else log
    for gym, part in ok.groupby("gym") if "gym" in ok else [("loss actor", ok)]:
        fig.add_trace(go.Scatter(x=part["episode"], y=part["loss_actor"], mode="lines+markers", name=f"loss {gym}"))
    fig.update_layout(xaxis_title="Episode", yaxis=dict(title="loss (MSE)", type="log"),
                      legend=dict(x=0, y=1.15, orientation="h"), height=450)
    return fig


def episode_figure(rows: pd.DataFrame, title: str) -> go.Figure:
    """NN inputs 1 and 17, the teacher's label and the NN output against the step, as the seed's second plot."""
    fig = go.Figure()
    for col, name in WAVEFORMS:
        if col in rows:
            fig.add_trace(go.Scatter(x=list(range(len(rows))), y=rows[col], name=name,
                                     mode="lines" if col == "V(nnin17)" else "lines+markers", marker=dict(size=3)))
    fig.update_layout(title=title, xaxis_title="Step", yaxis_title="NNIO", height=500,
                      legend=dict(orientation="h", x=0.5, y=-0.2, xanchor="center", yanchor="top"))
    return fig


def loss_header(log: pd.DataFrame, root) -> str:
    """The training page's header: episodes run, how many updated the actor, the last loss, the failed ones."""
    from ..util.html import verdict_header
    ok = log[log["status"] == "ok"] if "status" in log else log
    last = f", last loss {ok['loss_actor'].iloc[-1]:.3e}" if len(ok) else ""
    bad = log[log["status"] != "ok"] if "status" in log else log.iloc[0:0]
    reasons = [f"episode {int(r.episode)}: {r.status}: {r.error}" for r in bad.itertuples()]
    return verdict_header(f"buckbi train: {root}", None, f"{len(log)} episodes, {len(ok)} updated the actor{last}",
                          "", reasons)
