"""A plan's verdicts: ``results.csv`` (one row per test, corner, controller and figure), ``junit.xml`` and an
offline ``report.html`` with one line per test and corner (NN beside teacher), each opening its plot."""
from __future__ import annotations

import html
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..evaluation.figures import FIGURES, figures_of
from ..util.fsutil import atomic_write_text
from ..util.html import STYLE, verdict_header, write_html
from .plan import Plan, nominal_parts
from .run import PlanCell, PlanRun

PART_COLUMNS = ("L1", "C1", "ESR", "Lo", "ro")

COLUMNS = ["test", "corner", "controller", "figure", "value", "limit", "verdict", "unit", "draw", *PART_COLUMNS,
           "error", "extrapolation"]


def _lines(run: PlanRun) -> dict[tuple[str, str, str], list[PlanCell]]:
    """The run's cells by (test, corner, controller), in plan order (a tolerance test: one cell per draw)."""
    out: dict = {}
    for c in run.cells:
        out.setdefault((c.test.name, c.corner.name, c.controller), []).append(c)
    return out


def results_table(plan: Plan, run: PlanRun) -> pd.DataFrame:
    """One row per test, corner, controller and figure (and per draw of a tolerance test, with its part values,
    then the worst value of each figure over the draws, draw "worst", and the yield, figure ``yield_pct``). Verdict
    pass / fail (a limit) or '' (no limit), 'n/a' where the figure does not apply to the controller."""
    rows = []
    for (_, _, who), cells in _lines(run).items():
        test, corner = cells[0].test, cells[0].corner
        limits = {lim.figure: lim for lim in test.limits}
        base = {"test": test.name, "corner": corner.name, "controller": who,
                "extrapolation": ",".join(corner.outside_training)}
        draws = []
        for cell in cells:
            rec = run.records.get(cell.hash)
            if rec is None:
                continue
            parts = nominal_parts(corner) | (cell.parts or {})
            ok = not rec["error"]
            for fig in figures_of(test.scenario):
                value = rec["figures"].get(fig, math.nan)
                value = math.nan if value is None else float(value)
                verdict = _verdict(who, fig, limits.get(fig), value, rec["error"])
                ok &= verdict != "fail"
                rows.append(base | {"figure": fig, "value": value, "limit": _lim(limits.get(fig)), "verdict": verdict,
                                    "unit": FIGURES[fig].unit, "draw": cell.draw if test.variation else "",
                                    "error": rec["error"]} | {k: parts[k] for k in PART_COLUMNS})
            draws.append((rec, ok))
        if test.variation is None or not draws:
            continue
        for fig in figures_of(test.scenario):  # the worst of the draws (lower limits: the smallest)
            values = [float(r["figures"].get(fig) if r["figures"].get(fig) is not None else math.nan) for r, _ in draws]
            lim = limits.get(fig)
            finite = [v for v in values if not math.isnan(v)]
            worst = math.nan if not finite or len(finite) < len(values) else (min(finite) if lim and lim.lower
                                                                              else max(finite))
            rows.append(base | {"figure": fig, "value": worst, "limit": _lim(lim), "unit": FIGURES[fig].unit,
                                "verdict": _verdict(who, fig, lim, worst, ""), "draw": "worst", "error": ""})
        share = 100.0 * sum(ok for _, ok in draws) / len(draws)
        verdict = "n/a" if not test.limits else ("pass" if share >= test.min_yield_pct else "fail")
        rows.append(base | {"figure": "yield_pct", "value": share, "limit": f">= {test.min_yield_pct:g}",
                            "unit": "%", "verdict": verdict, "draw": f"{len(draws)} draws", "error": ""})
    return pd.DataFrame(rows, columns=COLUMNS)


def _lim(lim) -> str:
    return lim.text() if lim else ""


def missed_limits(test, who: str, figures: dict, error: str = "") -> list[str]:
    """What fails a cell, as the report judges it: its error, then each limit it misses ('figure = value (limit)');
    a figure that does not apply to the controller (n/a) never fails it."""
    out = [error] if error else []
    for lim in test.limits:
        value = figures.get(lim.figure, math.nan)
        value = math.nan if value is None else float(value)
        if _verdict(who, lim.figure, lim, value, "") == "fail":
            out.append(f"{lim.figure} = {value:.4g} (limit {lim.text()})")
    return out


def _verdict(who: str, fig: str, lim, value: float, error: str) -> str:
    if who == "teacher" and fig == "max_abs_input":
        return "n/a"
    if lim is None:
        return ""
    return "pass" if lim.passes(value) and not error else "fail"


def cell_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per test, corner and controller: pass/fail and why (the figures that fail, with value and limit; a
    tolerance test: its yield and the worst values)."""
    out = []
    for (test, corner, who), part in table.groupby(["test", "corner", "controller"], sort=False):
        draws = part["draw"].astype(str)
        summary = part[draws.isin(["", "worst"]) | (part["figure"] == "yield_pct")]
        bad = summary[summary["verdict"] == "fail"]
        why = [f"{r.figure} {r.value:.4g} (limit {r.limit})" for r in bad.itertuples()]
        errors = sorted({e for e in part["error"] if e})
        why = errors[:1] + why
        yrow = part[part["figure"] == "yield_pct"]
        failed = bool(why) if yrow.empty else yrow["verdict"].iloc[0] == "fail" or bool(errors and len(errors) == len(part))
        out.append({"test": test, "corner": corner, "controller": who, "verdict": "fail" if failed else "pass",
                    "why": "; ".join(why) if failed or not yrow.empty else ""})
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
        if test.variation is not None:
            part = table[(table["test"] == test.name) & (table["corner"] == corner.name)]
            fig = histogram_figure(test, corner, part)
        else:
            fig = cell_figure(test, corner, {c.controller: _trace(out, c) for c in cells})
        write_html(fig, plots / plot_name(test.name, corner.name), header=_line_header(test, corner, verdicts))
    atomic_write_text(out / "report.html", _html(plan, table, verdicts, run))
    return {"results": out / "results.csv", "junit": out / "junit.xml", "report": out / "report.html"}


def _line_header(test, corner, verdicts: pd.DataFrame) -> str:
    """A line's page: the NN's verdict (the teacher's beside it), the limits and why it fails."""
    v = verdicts[(verdicts["test"] == test.name) & (verdicts["corner"] == corner.name)]
    get = {r.controller: r for r in v.itertuples()}
    nn, teacher = get.get("nn"), get.get("teacher")
    passed = None if nn is None else nn.verdict == "pass"
    headline = (f"NN {nn.verdict if nn is not None else 'not run'}; teacher "
                f"{teacher.verdict if teacher is not None else 'not run'}")
    reasons = [f"{who}: {r.why}" for who, r in get.items() if r.verdict == "fail" and r.why]
    limits = ", ".join(f"{lim.figure} {lim.text()}" for lim in test.limits)
    return verdict_header(f"{test.name} [{corner.name}]", passed, headline, limits, reasons)


def _by_line(run: PlanRun) -> dict:
    """The run's finished cells by (test, corner), both controllers."""
    lines: dict = {}
    for (test, corner, _), cells in _lines(run).items():
        lines.setdefault((test, corner), []).extend(c for c in cells if c.hash in run.records)
    return {k: v for k, v in lines.items() if v}


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
        pm = _limit(test, "phase_margin_deg")
        if pm is not None:  # the phase at crossover must stay above -180 + the limit
            fig.add_hline(y=-180 + pm.value, line=dict(color="red", dash="dash"), row=2, col=1,
                          annotation_text=f"phase margin limit {pm.value:g} deg", annotation_position="bottom right")
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
        ref = next((tr["ref"] for tr in traces.values() if tr.get("t_ms")), None)
        if ref:
            t_ms = next(tr["t_ms"] for tr in traces.values() if tr.get("t_ms"))
            band = test.band_pct
            r = np.asarray(ref, dtype=float)
            fig.add_trace(go.Scatter(x=list(t_ms) + list(t_ms)[::-1], y=list(r * (1 + band / 100))
                                     + list(r * (1 - band / 100))[::-1], fill="toself", fillcolor="rgba(0,128,0,0.12)",
                                     line=dict(width=0), name=f"settling band +-{band:g} %", hoverinfo="skip"),
                          row=1, col=1)
            over = _limit(test, "overshoot_pct")
            if over is not None:
                fig.add_hline(y=corner.vref * (1 + over.value / 100), line=dict(color="red", dash="dash"), row=1, col=1,
                              annotation_text=f"overshoot limit {over.value:g} %", annotation_position="top left")
            settle = _limit(test, "settle_ms")
            if settle is not None and test.scenario == "startup":
                fig.add_vline(x=settle.value, line=dict(color="red", dash="dash"), row=1, col=1,
                              annotation_text=f"settle limit {settle.value:g} ms", annotation_position="bottom right")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=650, margin=dict(t=90),
                      legend=dict(orientation="h", x=0, y=-0.12))
    return fig


def _limit(test, figure: str):
    return next((lim for lim in test.limits if lim.figure == figure), None)


def histogram_figure(test, corner, part: pd.DataFrame) -> go.Figure:
    """A tolerance test at one corner: per figure the histogram of the draws, NN beside teacher, with the limit."""
    per_draw = part[~part["draw"].astype(str).isin(["", "worst"]) & (part["figure"] != "yield_pct")]
    limited = [lim.figure for lim in test.limits] or list(figures_of(test.scenario))
    figs = [f for f in figures_of(test.scenario) if f in limited]
    yields = {r.controller: r.value for r in part[part["figure"] == "yield_pct"].itertuples()}
    fig = make_subplots(rows=len(figs), cols=1, subplot_titles=[f"{f} ({FIGURES[f].unit})" for f in figs])
    for i, f in enumerate(figs, 1):
        for who in ("nn", "teacher"):
            vals = per_draw[(per_draw["figure"] == f) & (per_draw["controller"] == who)]["value"]
            fig.add_trace(go.Histogram(x=vals, name=f"{NAMES[who]}, yield {yields.get(who, math.nan):.1f} %",
                                       legendgroup=who, showlegend=i == 1, marker_color=COLORS[who], opacity=0.6,
                                       nbinsx=30), row=i, col=1)
        lim = next((lim for lim in test.limits if lim.figure == f), None)
        if lim is not None:
            fig.add_vline(x=lim.value, line=dict(color="black", dash="dash"), row=i, col=1)
    v = test.variation
    spec = ", ".join(f"{t.part} {t.kind} {t.lo:g}..{t.hi:g}" for t in v.tolerances)
    fig.update_layout(barmode="overlay", height=260 * len(figs) + 120,
                      title=f"{test.name} [{corner.name}] ({v.mode}: {spec}; {len(per_draw['draw'].unique())} draws)")
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
    head = verdict_header(f"buckbi test plan: {plan.name}", n_fail == 0,
                          f"the NN passes {len(nn) - n_fail} of {len(nn)} lines" + (f", fails {n_fail}" if n_fail else ""),
                          "per test below, each figure's limit under its name")
    head += (f"<p>{len(nn)} lines (test x corner), NN "
            f"<b>{len(nn) - n_fail} pass, {n_fail} fail</b>; teacher "
            f"{int((verdicts[verdicts['controller'] == 'teacher']['verdict'] == 'pass').sum())} pass. Source: "
            f"<code>{html.escape(plan.source)}</code>. Each line opens its plot. Verdicts: NN cells fail the run, "
            "the teacher's are shown beside them. <span class='x'>extrapolation</span>: the corner lies outside "
            "the training box.</p>")
    summary = summary_table(verdicts)
    parts = [head, "<table><tr><th>test</th><th>scenario</th><th>corners</th><th>NN pass</th><th>teacher pass</th>"
             "<th>NN fails on (corners)</th></tr>"]
    scen = {t.name: t.scenario for t in plan.tests}
    for r in summary.itertuples():
        cls = "pass" if r.nn_pass == r.corners else "fail"
        parts.append(f"<tr><td class='l'><a href='#{html.escape(r.test)}'>{html.escape(r.test)}</a></td>"
                     f"<td class='l'>{scen.get(r.test, '')}</td><td>{r.corners}</td><td class='{cls}'>{r.nn_pass}</td>"
                     f"<td>{r.teacher_pass}</td><td class='l'>{html.escape(r.nn_fails_on)}</td></tr>")
    parts.append("</table>")
    for test in plan.tests:
        figs = figures_of(test.scenario)
        limits = {lim.figure: lim.text() for lim in test.limits}
        var = test.variation
        vtext = (f"; {var.mode} " + ", ".join(f"{t.part} {t.kind} x{t.lo:g}..{t.hi:g}" for t in var.tolerances)
                 + (f", {var.draws} draws, seed {var.seed}" if var.mode == "montecarlo" else "") + ": worst of the draws"
                 if var is not None else "")
        parts.append(f"<h2 id='{html.escape(test.name)}'>{html.escape(test.name)} <small>({test.scenario}{vtext}"
                     + (f", {', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in test.settings.items())}"
                        if test.settings else "")
                     + ")</small></h2><table><tr><th>corner</th><th>vin</th><th>vref</th><th>ro</th><th>NN</th>"
                     "<th>teacher</th>" + "".join(f"<th>{f}<br><small>{html.escape(limits.get(f, ''))}</small></th>"
                                                   for f in figs)
                     + ("<th>yield_pct<br><small>&gt;= " + f"{test.min_yield_pct:g}</small></th>"
                        if test.variation is not None else "") + "</tr>")
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
                    if test.variation is not None:
                        q = q[q["draw"].astype(str) == "worst"]
                    if q.empty:
                        cellv.append("<span class='na'>—</span>")
                        continue
                    q = q.iloc[0]
                    cls = {"pass": "pass", "fail": "fail", "n/a": "na"}.get(q["verdict"], "")
                    cellv.append(f"<span class='{cls}'>{_fmt(q['value'])}</span>")
                row.append(f"<td>{cellv[0]} / {cellv[1]}</td>")
            if test.variation is not None:
                y = {r.controller: r for r in part[part["figure"] == "yield_pct"].itertuples()}
                row.append("<td>" + " / ".join(f"<span class='{y[w].verdict}'>{y[w].value:.1f}</span>" if w in y
                                               else "—" for w in ("nn", "teacher")) + "</td>")
            parts.append("<tr>" + "".join(row) + "</tr>")
        parts.append("</table><p><small>figure cells: NN / teacher</small></p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>buckbi test plan {html.escape(plan.name)}"
            f"</title><style>{_CSS}</style>{STYLE}</head><body>{''.join(parts)}</body></html>")


def summary_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per test: how many corners the NN and the teacher pass, and the figures the NN fails with (how often)."""
    rows = []
    for test, part in verdicts.groupby("test", sort=False):
        nn, teacher = part[part["controller"] == "nn"], part[part["controller"] == "teacher"]
        figs: dict[str, int] = {}
        for why in nn.loc[nn["verdict"] == "fail", "why"]:
            for item in why.split("; "):
                name = item.split(" ")[0]
                if name.endswith(":"):  # a run that failed: its error, not a figure
                    name = f"run failed ({item[:80]})"
                figs[name] = figs.get(name, 0) + 1
        rows.append({"test": test, "corners": len(nn), "nn_pass": int((nn["verdict"] == "pass").sum()),
                     "teacher_pass": int((teacher["verdict"] == "pass").sum()),
                     "nn_fails_on": ", ".join(f"{k} ({v})" for k, v in figs.items())})
    return pd.DataFrame(rows)
