"""A plan's verdicts: ``results.csv`` (one row per test, corner, controller and figure), ``junit.xml`` and an
offline ``report.html`` with one line per test and corner (NN beside teacher), each opening its plot."""
from __future__ import annotations

import html
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..figures import FIGURES, figures_of
from ..fsutil import atomic_write_text
from .plan import Plan
from .run import PlanCell, PlanRun

COLUMNS = ["test", "corner", "controller", "figure", "value", "limit", "verdict", "unit", "error", "extrapolation"]


def results_table(plan: Plan, run: PlanRun) -> pd.DataFrame:
    """One row per test, corner, controller and figure; verdict pass / fail (a limit) or '' (no limit), 'n/a'
    where the figure does not apply to the controller (NN inputs for the teacher)."""
    rows = []
    for cell in run.cells:
        rec = run.records.get(cell.hash)
        if rec is None:
            continue
        limits = {lim.figure: lim for lim in cell.test.limits}
        extra = ",".join(cell.corner.outside_training)
        for fig in figures_of(cell.test.scenario):
            value = rec["figures"].get(fig, math.nan)
            value = math.nan if value is None else float(value)
            lim = limits.get(fig)
            if cell.controller == "teacher" and fig == "max_abs_input":
                verdict = "n/a"
            elif lim is None:
                verdict = ""
            else:
                verdict = "pass" if lim.passes(value) and not rec["error"] else "fail"
            rows.append({"test": cell.test.name, "corner": cell.corner.name, "controller": cell.controller,
                         "figure": fig, "value": value, "unit": FIGURES[fig].unit,
                         "limit": lim.text() if lim else "", "verdict": verdict, "error": rec["error"],
                         "extrapolation": extra})
    return pd.DataFrame(rows, columns=COLUMNS)


def cell_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per test, corner and controller: pass/fail and the figures that fail (with value and limit)."""
    out = []
    for (test, corner, who), part in table.groupby(["test", "corner", "controller"], sort=False):
        bad = part[part["verdict"] == "fail"]
        why = [f"{r.figure} {r.value:.4g} (limit {r.limit})" for r in bad.itertuples()]
        err = part["error"].iloc[0]
        if err:
            why.insert(0, err)
        out.append({"test": test, "corner": corner, "controller": who, "verdict": "fail" if why else "pass",
                    "why": "; ".join(why)})
    return pd.DataFrame(out, columns=["test", "corner", "controller", "verdict", "why"])


def plot_name(test: str, corner: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test}[{corner}]") + ".html"


def write_plan_report(plan: Plan, run: PlanRun, out: str | Path) -> dict[str, Path]:
    """Write results.csv, junit.xml, report.html and plots/; returns their paths."""
    out = Path(out)
    table = results_table(plan, run)
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    verdicts = cell_verdicts(table)
    _junit(plan, table, verdicts, out / "junit.xml")
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    for cells in _by_line(run).values():
        test, corner = cells[0].test, cells[0].corner
        fig = cell_figure(test, corner, {c.controller: _trace(out, c) for c in cells})
        fig.write_html(plots / plot_name(test.name, corner.name), include_plotlyjs="directory", full_html=True)
    atomic_write_text(out / "report.html", _html(plan, table, verdicts, run))
    return {"results": out / "results.csv", "junit": out / "junit.xml", "report": out / "report.html"}


def _by_line(run: PlanRun) -> dict:
    lines: dict = {}
    for c in run.cells:
        if c.hash in run.records:
            lines.setdefault((c.test.name, c.corner.name), []).append(c)
    return lines


def _trace(out: Path, cell: PlanCell) -> dict:
    path = out / "traces" / f"{cell.hash}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


COLORS = {"teacher": "#1f77b4", "nn": "#d62728"}
NAMES = {"teacher": "teacher (Type III)", "nn": "NN (deploy)"}


def cell_figure(test, corner, traces: dict[str, dict]) -> go.Figure:
    """Vout (period-averaged) and duty of NN and teacher, or their loop gains (fra)."""
    title = (f"{test.name} [{corner.name}]: vin {corner.vin:g} V, vref {corner.vref:g} V, ro {corner.ro:g} Ohm, "
             f"Lo {corner.Lo * 1e6:g} uH ({test.scenario})")
    if test.scenario == "fra":
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("|T| (dB)", "phase of T (deg)"))
        for who, tr in traces.items():
            if tr.get("f_Hz"):
                kw = dict(name=NAMES[who], legendgroup=who, line=dict(color=COLORS[who]))
                fig.add_trace(go.Scatter(x=tr["f_Hz"], y=tr["gain_dB"], **kw), row=1, col=1)
                fig.add_trace(go.Scatter(x=tr["f_Hz"], y=tr["phase_deg"], showlegend=False, **kw), row=2, col=1)
        fig.add_hline(y=0, line=dict(dash="dot", color="gray"), row=1, col=1)
        fig.add_hline(y=-180, line=dict(dash="dot", color="gray"), row=2, col=1)
        fig.update_xaxes(type="log", title_text="frequency (Hz)", row=2, col=1)
    else:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                            subplot_titles=("Vout averaged per switching period (V)", "duty"))
        ref_done = False
        for who, tr in traces.items():
            if not tr.get("t_ms"):
                continue
            kw = dict(name=NAMES[who], legendgroup=who, line=dict(color=COLORS[who]))
            fig.add_trace(go.Scatter(x=tr["t_ms"], y=tr["vout_avg"], **kw), row=1, col=1)
            fig.add_trace(go.Scatter(x=tr["t_rows_ms"], y=tr["duty"], showlegend=False, **kw), row=2, col=1)
            if not ref_done:
                fig.add_trace(go.Scatter(x=tr["t_ms"], y=tr["ref"], name="reference",
                                         line=dict(color="gray", dash="dot")), row=1, col=1)
                ref_done = True
        fig.update_xaxes(title_text="time (ms)", row=2, col=1)
    fig.update_layout(title=title, height=650)
    return fig


def _junit(plan: Plan, table: pd.DataFrame, verdicts: pd.DataFrame, path: Path) -> None:
    nn = verdicts[verdicts["controller"] == "nn"]
    suite = ET.Element("testsuite", name=f"buckbi.testplan.{plan.name}", tests=str(len(nn)),
                       failures=str(int((nn["verdict"] == "fail").sum())))
    for v in nn.itertuples():
        case = ET.SubElement(suite, "testcase", classname=f"buckbi.testplan.{plan.name}.{v.test}",
                             name=f"{v.test}[{v.corner}]")
        part = table[(table["test"] == v.test) & (table["corner"] == v.corner)]
        props = ET.SubElement(case, "properties")
        for r in part.itertuples():
            ET.SubElement(props, "property", name=f"{r.controller}.{r.figure}", value=f"{r.value:.6g}")
        if v.verdict == "fail":
            ET.SubElement(case, "failure", message=v.why).text = v.why
    atomic_write_text(path, ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode", xml_declaration=True))


_CSS = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}td.l{text-align:left}
.pass{background:#d7f5d7}.fail{background:#f8c9c9;font-weight:bold}.na{color:#999}.x{color:#a60}
a{color:#0645ad}"""


def _fmt(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _html(plan: Plan, table: pd.DataFrame, verdicts: pd.DataFrame, run: PlanRun) -> str:
    nn = verdicts[verdicts["controller"] == "nn"]
    n_fail = int((nn["verdict"] == "fail").sum())
    head = (f"<h1>buckbi test plan: {html.escape(plan.name)}</h1><p>{len(nn)} lines (test x corner), NN "
            f"<b>{len(nn) - n_fail} pass, {n_fail} fail</b>; teacher "
            f"{int((verdicts[verdicts['controller'] == 'teacher']['verdict'] == 'pass').sum())} pass. Source: "
            f"<code>{html.escape(plan.source)}</code>. Each line opens its plot. Verdicts: NN cells fail the run, "
            "the teacher's are shown beside them. <span class='x'>extrapolation</span>: the corner lies outside "
            "the training box.</p>")
    parts = [head]
    for test in plan.tests:
        figs = figures_of(test.scenario)
        limits = {lim.figure: lim.text() for lim in test.limits}
        parts.append(f"<h2>{html.escape(test.name)} <small>({test.scenario}"
                     + (f", {', '.join(f'{k}={v:g}' for k, v in test.settings.items())}" if test.settings else "")
                     + ")</small></h2><table><tr><th>corner</th><th>vin</th><th>vref</th><th>ro</th><th>NN</th>"
                     "<th>teacher</th>" + "".join(f"<th>{f}<br><small>{html.escape(limits.get(f, ''))}</small></th>"
                                                   for f in figs) + "</tr>")
        for name in test.corners:
            c = plan.corners[name]
            part = table[(table["test"] == test.name) & (table["corner"] == name)]
            if part.empty:
                continue
            v = {r.controller: r for r in verdicts[(verdicts["test"] == test.name)
                                                   & (verdicts["corner"] == name)].itertuples()}
            link = f"plots/{plot_name(test.name, name)}"
            x = " <span class='x'>extrapolation</span>" if c.outside_training else ""
            row = [f"<td class='l'><a href='{link}'>{html.escape(name)}</a>{x}</td><td>{c.vin:g}</td>"
                   f"<td>{c.vref:g}</td><td>{c.ro:g}</td>"]
            for who in ("nn", "teacher"):
                r = v.get(who)
                cls = r.verdict if r is not None else "na"
                row.append(f"<td class='{cls}' title='{html.escape(r.why if r is not None else '')}'>"
                           f"{r.verdict if r is not None else '—'}</td>")
            for f in figs:
                cellv = []
                for who in ("nn", "teacher"):
                    q = part[(part["controller"] == who) & (part["figure"] == f)]
                    if q.empty:
                        cellv.append("<span class='na'>—</span>")
                        continue
                    q = q.iloc[0]
                    cls = {"pass": "pass", "fail": "fail", "n/a": "na"}.get(q["verdict"], "")
                    cellv.append(f"<span class='{cls}'>{_fmt(q['value'])}</span>")
                row.append(f"<td>{cellv[0]} / {cellv[1]}</td>")
            parts.append("<tr>" + "".join(row) + "</tr>")
        parts.append("</table><p><small>figure cells: NN / teacher</small></p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>buckbi test plan {html.escape(plan.name)}"
            f"</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")


def summary_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per test: how many corners the NN and the teacher pass, and the figures the NN fails with (how often)."""
    rows = []
    for test, part in verdicts.groupby("test", sort=False):
        nn, teacher = part[part["controller"] == "nn"], part[part["controller"] == "teacher"]
        figs: dict[str, int] = {}
        for why in nn.loc[nn["verdict"] == "fail", "why"]:
            for item in why.split("; "):
                name = item.split(" ")[0]
                figs[name] = figs.get(name, 0) + 1
        rows.append({"test": test, "corners": len(nn), "nn_pass": int((nn["verdict"] == "pass").sum()),
                     "teacher_pass": int((teacher["verdict"] == "pass").sum()),
                     "nn_fails_on": ", ".join(f"{k} ({v})" for k, v in figs.items())})
    return pd.DataFrame(rows)
