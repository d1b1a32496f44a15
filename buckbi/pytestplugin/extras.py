"""Report attachments for pytest-html: PNG plots (base64, so a self-contained report works offline)."""
from __future__ import annotations

import base64
import io

import pandas as pd


def _axes():
    """A 7x3 in figure on the non-interactive backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(7, 3))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def loss_png(log: pd.DataFrame) -> str:
    """The loss per episode (log axis), as the seed's loss plot."""
    fig, ax = _axes()
    ok = log[log["status"] == "ok"]
    ax.semilogy(ok["episode"], ok["loss_actor"], "o-", label="loss actor (MSE)")
    ax.set_xlabel("episode")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _png(fig)


def episode_png(rows: pd.DataFrame, title: str) -> str:
    """NNin1, NNin17, the teacher's label and NNout1 against the step, as the seed's episode plot."""
    from ..train.plots import WAVEFORMS
    fig, ax = _axes()
    for col, name in WAVEFORMS:
        if col in rows:
            ax.plot(range(len(rows)), rows[col], label=name, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("NNIO")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, -0.45))
    return _png(fig)


def html_extras(request) -> list | None:
    """pytest-html's ``extras`` list of this item, or None without pytest-html (a plain ``pip install buckbi``)."""
    if not request.config.pluginmanager.hasplugin("html") or not _have_matplotlib():
        return None
    return request.getfixturevalue("extras")


def _have_matplotlib() -> bool:
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


def figure_recorder(request):
    """``record(name, value)``: a figure into the item's user properties (JUnit XML, pytest-html), as pytest's
    ``record_property`` does, without its warning under the default junit_family xunit2."""
    return lambda name, value: request.node.user_properties.append((name, value))


def attach(extras: list, png_b64: str, name: str) -> None:
    """Append a PNG to pytest-html's ``extras`` list (no-op without pytest-html)."""
    try:
        from pytest_html import extras as html_extras
    except ImportError:
        return
    extras.append(html_extras.png(png_b64, name))


def plan_cell_png(test, corner, traces: dict[str, dict]) -> str:
    """A plan cell's plot: period-averaged Vout of NN and teacher with the reference, or their loop gains."""
    fig, ax = _axes()
    colors = {"teacher": "tab:blue", "nn": "tab:red"}
    for who, tr in traces.items():
        if test.scenario == "fra" and tr.get("f_Hz"):
            ax.semilogx(tr["f_Hz"], tr["gain_dB"], label=f"{who} |T| (dB)", color=colors[who])
        elif tr.get("t_ms"):
            ax.plot(tr["t_ms"], tr["vout_avg"], label=f"{who} Vout (period mean)", color=colors[who], lw=1)
    if test.scenario == "fra":
        ax.axhline(0, color="gray", ls=":")
        ax.set_xlabel("frequency (Hz)")
    else:
        first = next((tr for tr in traces.values() if tr.get("t_ms")), None)
        if first:
            ax.plot(first["t_ms"], first["ref"], color="gray", ls=":", label="reference")
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("V")
    ax.set_title(f"{test.name}[{corner.name}]: vin {corner.vin:g} V, vref {corner.vref:g} V, ro {corner.ro:g} Ohm",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)
