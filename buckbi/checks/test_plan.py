"""A sign-off test plan as pytest items: one per test and corner, the NN (deploy) judged, the teacher beside it.

``pytest --pyargs buckbi.checks.test_plan --buckbi-plan default --buckbi-actor PATH [--buckbi-simulator pwl]``
(or ``--buckbi-netlist FILE``, SPICE only). An item fails with each figure that misses its limit, its value, the
limit and the teacher's value; pytest-html (when installed) gets the cell's plot; the figures go to the item's user properties
(JUnit ``--junitxml``, any junit_family). Without ``--buckbi-plan`` the item skips, saying how to enable it.
"""
from __future__ import annotations

import math

from buckbi.evaluation.figures import figures_of
from buckbi.pytestplugin.extras import attach, figure_recorder, html_extras, plan_cell_png
from buckbi.pytestplugin.fixtures import refuse_other_converter
from buckbi.testplan import run_cell
from buckbi.testplan.cells import run_cells
from buckbi.testplan.plan import draw_parts
from buckbi.testplan.report import missed_limits


def test_plan_cell(plan_line, controller, episode_simulator, request):
    test, corner = plan_line
    refuse_other_converter(request.config, controller, corner.conv)  # the plan's converter (--buckbi-converter's)
    record_property = figure_recorder(request)
    if test.variation is not None:
        return _tolerance_line(test, corner, controller, episode_simulator, record_property)
    results = {who: run_cell(controller if who == "nn" else None, test, corner, who, episode_simulator)
               for who in ("nn", "teacher")}
    nn, teacher = results["nn"], results["teacher"]
    for who, res in results.items():
        for fig, value in res["figures"].items():
            record_property(f"{who}.{fig}", value)
    extras = html_extras(request)
    if extras is not None:
        attach(extras, plan_cell_png(test, corner, {w: r["trace"] for w, r in results.items()}),
               f"{test.name}[{corner.name}]")
    assert not nn["error"], f"{test.name}[{corner.name}]: the NN's run failed: {nn['error']}"
    misses = []
    for lim in test.limits:
        value = nn["figures"].get(lim.figure, math.nan)
        if not lim.passes(value):
            t = teacher["figures"].get(lim.figure, math.nan)
            misses.append(f"{lim.figure} = {value:.4g}, limit {lim.text()} (teacher {t:.4g})")
    assert not misses, (f"{test.name}[{corner.name}] ({test.scenario}, vin {corner.vin:g} V, vref {corner.vref:g} V, "
                        f"ro {corner.ro:g} Ohm): " + "; ".join(misses))
    assert set(nn["figures"]) == set(figures_of(test.scenario))


def _tolerance_line(test, corner, controller, simulator, record_property) -> None:
    """A tolerance test at one corner: every draw for NN and teacher (on the fast simulator in one batch); fails
    when the NN's yield is below the test's min_yield_pct, naming the draws that fail and how."""
    draws = draw_parts(test, corner)
    results = {who: run_cells(controller if who == "nn" else None, test, corner, who, simulator, parts_list=draws)
               for who in ("nn", "teacher")}
    yields, misses = {}, []
    for who, res in results.items():
        bad = [missed_limits(test, who, r["figures"], r["error"]) for r in res]
        yields[who] = 100.0 * sum(not b for b in bad) / len(draws)
        record_property(f"{who}.yield_pct", yields[who])
        if who == "nn":
            misses = [f"#{k} ({', '.join(f'{n} {v:.4g}' for n, v in parts.items())}): {'; '.join(b)}"
                      for k, (parts, b) in enumerate(zip(draws, bad), 1) if b]
    assert yields["nn"] >= test.min_yield_pct, (
        f"{test.name}[{corner.name}]: NN yield {yields['nn']:.1f} % < {test.min_yield_pct:g} % over {len(draws)} draws "
        f"(teacher {yields['teacher']:.1f} %); failing draws: " + " | ".join(misses[:5]))
