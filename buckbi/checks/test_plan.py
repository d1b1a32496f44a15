"""A sign-off test plan as pytest items: one per test and corner, the NN (deploy) judged, the teacher beside it.

``pytest --pyargs buckbi.checks.test_plan --buckbi-plan default --buckbi-actor PATH [--buckbi-simulator pwl]``
(or ``--buckbi-netlist FILE``, SPICE only). An item fails with each figure that misses its limit, its value, the
limit and the teacher's value; pytest-html gets the cell's plot; the figures go to the item's user properties
(JUnit ``--junitxml``). Without ``--buckbi-plan`` the item skips, saying how to enable it.
"""
from __future__ import annotations

import math

import pytest

from buckbi.figures import figures_of
from buckbi.pytestplugin.extras import attach, plan_cell_png
from buckbi.testplan import run_cell


def test_plan_cell(plan_line, controller, episode_simulator, record_property, extras):
    test, corner = plan_line
    results = {who: run_cell(controller if who == "nn" else None, test, corner, who, episode_simulator)
               for who in ("nn", "teacher")}
    nn, teacher = results["nn"], results["teacher"]
    for who, res in results.items():
        for fig, value in res["figures"].items():
            record_property(f"{who}.{fig}", value)
    attach(extras, plan_cell_png(test, corner, {w: r["trace"] for w, r in results.items()}), f"{test.name}[{corner.name}]")
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
