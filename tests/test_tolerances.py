"""Component tolerances in a plan: Monte Carlo and worst case from one component table for both engines, yield,
one results row per draw with its part values, a failing draw re-run alone."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from buckbi.converters.buck.spec import COMPONENTS, EpisodeParams
from buckbi.engines.spice import param_file_text
from buckbi.testplan import PlanError, load_plan, parse_plan, run_cell
from buckbi.testplan.plan import Corner, Test, draw_parts

CORNER = {"nominal": {"vin": 200, "vref": 100, "ro": 20}}
PLAN = """
[corners.nominal]
vin = 200
vref = 100
ro = 20
[[tests]]
name = "startup-mc"
scenario = "startup"
corners = "all"
montecarlo = { draws = 12, seed = 3, L1 = "20%", C1 = "gauss:3sigma=20%", ESR = "x0.5..2" }
limits = { overshoot_pct = 5, settle_ms = 5, ripple_pct = 2 }
[[tests]]
name = "loadstep-wc"
scenario = "loadstep"
corners = "all"
worstcase = { L1 = "20%", C1 = "20%" }
limits = { step_dev_pct = 8 }
"""


def plan_with(**test) -> dict:
    return {"corners": CORNER, "tests": [{"name": "t", "scenario": "startup"} | test]}


@pytest.mark.parametrize("test, message", [
    ({"montecarlo": {"draws": 5, "L3": "20%"}}, r"montecarlo: no part 'L3'; the parts are L1, C1, ESR, Lo, ro"),
    ({"montecarlo": {"draws": 0, "L1": "20%"}}, r"montecarlo.draws must be >= 1"),
    ({"montecarlo": {"draws": 5, "L1": "-20%"}}, r"a band must lie between 0 and 100 %"),
    ({"montecarlo": {"draws": 5, "L1": "100%"}}, r"a band must lie between 0 and 100 %"),
    ({"montecarlo": {"draws": 5, "L1": "x2..0.5"}}, r"needs 0 < LO < HI"),
    ({"montecarlo": {"draws": 5, "L1": 0.2}}, r'must be a string such as "20%"'),
    ({"montecarlo": {"draws": 5}}, r"varies no part"),
    ({"worstcase": {"C1": "gauss:3sigma=10%"}}, r"a worst case takes a band's ends"),
    ({"worstcase": {"C1": "10%"}, "montecarlo": {"C1": "10%"}}, r"not both"),
    ({"worstcase": {"C1": "10%"}, "min_yield_pct": 120}, r"min_yield_pct must lie in 0..100"),
])
def test_bad_tolerances_are_refused_with_the_reason(test, message):
    with pytest.raises(PlanError, match=message):
        parse_plan(plan_with(**test))


def test_draws_are_seeded_per_draw_and_worst_case_takes_every_corner_of_the_bands():
    plan = parse_plan({"corners": CORNER, "tests": [
        {"name": "a", "scenario": "startup", "montecarlo": {"draws": 200, "seed": 7, "L1": "20%", "ESR": "x0.5..2"}},
        {"name": "b", "scenario": "startup", "montecarlo": {"draws": 200, "seed": 7, "L1": "20%"}},
        {"name": "w", "scenario": "startup", "worstcase": {"L1": "20%", "C1": "20%", "ESR": "x0.5..2"}}]})
    corner = plan.corners["nominal"]
    a, b, w = (draw_parts(t, corner) for t in plan.tests)
    assert [d["L1"] for d in a] == [d["L1"] for d in b]  # adding a tolerance does not move the others' draws
    L1 = np.array([d["L1"] for d in a]) / COMPONENTS["L1"][1]
    assert 0.8 <= L1.min() and L1.max() <= 1.2 and L1.std() > 0.09  # uniform over +-20 %: std 0.115
    esr = np.log(np.array([d["ESR"] for d in a]) / COMPONENTS["ESR"][1])
    assert np.log(0.5) <= esr.min() and esr.max() <= np.log(2) and abs(np.median(esr)) < 0.15  # log-uniform
    assert len(w) == 8
    expected = {(l1, c1, e) for l1 in (200e-6, 300e-6) for c1 in (176e-6, 264e-6) for e in (0.12245, 0.4898)}
    assert {tuple(round(d[k], 12) for k in ("L1", "C1", "ESR")) for d in w} == {
        tuple(round(v, 12) for v in e) for e in expected}
    assert draw_parts(plan.tests[0], corner) == a  # reproducible


def test_the_parameter_file_carries_the_drawn_parts():
    p = EpisodeParams(vin=200, ro=20, Lo=50e-6, vref=100, L1=300e-6, C1=176e-6, ESR=0.49)
    text = param_file_text(p, None, "teacher")
    assert ".param Lbuck=0.0003" in text and ".param Cbuck=0.000176" in text and ".param Resr=0.49" in text
    assert EpisodeParams(vin=200, ro=20, Lo=50e-6, vref=100).nominal_parts and not p.nominal_parts


TOL = {"dc_error_pct": 0.02, "overshoot_pct": 0.3, "settle_ms": 0.25}


@pytest.mark.ltspice
def test_a_draw_moves_both_engines_the_same_way(simulator):
    # The teacher's start-up at nominal parts and at one draw (C1 -20 %, L1 +20 %, ESR x2): the ripple grows by half
    # and the overshoot and settling move alike in both engines, and the two engines still agree within the plan cells' tolerances.
    test, corner = Test("t", "startup", ("c",), ()), Corner("c", 200.0, 100.0, 20.0, 50e-6)
    draw = {"C1": 176e-6, "L1": 300e-6, "ESR": 0.4898}
    got = {(sim, bool(parts)): run_cell(None, test, corner, "teacher", sim, parts=parts)["figures"]
           for sim in ("pwl", simulator) for parts in ({}, draw)}
    moves = {}
    for sim in ("pwl", simulator):
        nominal, drawn = got[(sim, False)], got[(sim, True)]
        assert drawn["ripple_pct"] / nominal["ripple_pct"] == pytest.approx(1.5, abs=0.25)
        moves[sim] = {f: drawn[f] - nominal[f] for f in ("ripple_pct", "overshoot_pct", "settle_ms")}
    for fig, move in moves["pwl"].items():  # the same direction and about the same size in both engines
        assert move * moves[simulator][fig] >= 0 and abs(move - moves[simulator][fig]) <= 0.1 + 0.1 * abs(move), fig
    for key in ((False,), (True,)):
        f, s = got[("pwl", *key)], got[(simulator, *key)]
        assert f["ripple_pct"] == pytest.approx(s["ripple_pct"], rel=0.02)
        for fig, tol in TOL.items():
            assert abs(f[fig] - s[fig]) <= tol, (key, fig, f[fig], s[fig])


def within(value, limit: str) -> bool:
    """A figure against a limit written as '<= X' or '>= X' (NaN: not measured, fails)."""
    op, bound = limit.split()
    v = float(value)
    return v == v and (v <= float(bound) if op == "<=" else v >= float(bound))


def test_a_tolerance_plan_reports_yield_worst_values_and_rows_per_draw_and_reruns_one_draw(tmp_path):
    path = tmp_path / "mc.toml"
    path.write_text(PLAN)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "buckbi", "testplan", str(path), "--actor", "seed-pretrained", "--simulator", "pwl",
           "--jobs", "1", "--quiet", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    t = pd.read_csv(out / "results.csv", keep_default_na=False)
    mc = t[t.test == "startup-mc"]
    per_draw = mc[~mc.draw.isin(["worst"]) & (mc.figure != "yield_pct")]
    assert sorted(set(per_draw.draw.astype(int))) == list(range(1, 13))
    assert per_draw.groupby("draw")[["L1", "C1", "ESR"]].nunique().max().max() == 1  # one part set per draw
    assert per_draw["ESR"].astype(float).nunique() == 12
    for who in ("nn", "teacher"):
        rows = per_draw[per_draw.controller == who]
        judged = rows[rows.limit != ""]  # the yield recomputed from the figures and the limits' text alone
        ok = judged.groupby("draw").apply(lambda g: all(within(v, lim) for v, lim in zip(g.value, g.limit)))
        y = mc[(mc.controller == who) & (mc.figure == "yield_pct")].iloc[0]
        assert float(y.value) == pytest.approx(100 * ok.mean()) and y.draw == "12 draws"
        worst = mc[(mc.controller == who) & (mc.draw == "worst") & (mc.figure == "ripple_pct")].iloc[0]
        assert float(worst.value) == pytest.approx(rows[rows.figure == "ripple_pct"].value.astype(float).max())
    wc = t[(t.test == "loadstep-wc") & (t.figure == "yield_pct")]
    assert set(wc.draw) == {"4 draws"}
    html = (out / "plots" / "startup-mc_nominal_.html").read_text()
    assert "histogram" in html and "yield" in html
    # one draw alone: nothing else runs, the cells of that draw are found again
    res = subprocess.run([*cmd, "--only", "startup-mc[nominal]#5"], capture_output=True, text=True, timeout=600)
    assert "2 from before, 0 run now" in res.stdout, res.stdout
    (out / "cells.jsonl").unlink()
    res = subprocess.run([*cmd, "--only", "startup-mc[nominal]#5"], capture_output=True, text=True, timeout=600)
    assert "0 from before, 2 run now" in res.stdout, res.stdout
    one = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert set(one[one.draw.isin(["5"])].test) == {"startup-mc"}
    assert load_plan(path).tests[0].variation.draws == 12


def test_a_batch_of_draws_gives_each_draws_own_cell_on_the_fast_simulator():
    """On the fast simulator a tolerance test's draws run BATCH at a time in one kernel call (testplan.run): each
    result equals that draw's cell run alone, for the NN and the teacher."""
    from buckbi.nn.actors import resolve_actor
    from buckbi.testplan.cells import run_cells
    from buckbi.testplan.run import task_groups
    import tomllib
    plan = parse_plan(tomllib.loads(PLAN.replace("draws = 12", "draws = 4")))
    test, corner = plan.tests[0], plan.corners["nominal"]
    parts = draw_parts(test, corner)
    actor = resolve_actor("seed-pretrained")
    for controller in ("nn", "teacher"):
        batch = run_cells(actor if controller == "nn" else None, test, corner, controller, "pwl", parts_list=parts)
        assert len(batch) == len(parts) and not any(r["error"] for r in batch)
        for p, got in zip(parts, batch):
            alone = run_cell(actor if controller == "nn" else None, test, corner, controller, "pwl", parts=p)
            assert got["figures"] == alone["figures"], (controller, p)
    from buckbi.testplan.run import plan_cells
    cells = plan_cells(plan, actor, "pwl")
    groups = task_groups(cells, fast=True)
    assert sum(len(g) for g in groups) == len(cells)
    assert all(len({(c.test.name, c.corner.name, c.controller) for c in g}) == 1 for g in groups)
    assert len(task_groups(cells, fast=False)) == len(cells)  # SPICE: one task per cell


def test_a_tolerance_item_in_pytest_gives_the_reports_yield(pytester, tmp_path):
    """As pytest items (--buckbi-plan) a tolerance line judges each draw as the report does: the same yield."""
    import xml.etree.ElementTree as ET
    pytester.makefile(".toml", plan=PLAN)
    xml = pytester.path / "junit.xml"
    res = pytester.runpytest_subprocess("--pyargs", "buckbi.checks.test_plan", "--buckbi-plan", "plan.toml",
                                        "--buckbi-actor", "seed-pretrained", "--buckbi-simulator", "pwl",
                                        "-p", "no:cacheprovider", f"--junitxml={xml}", "-k", "startup-mc")
    assert res.ret in (0, 1)
    props = {p.get("name"): float(p.get("value")) for p in ET.parse(xml).iter("property")}
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "buckbi", "testplan", str(pytester.path / "plan.toml"), "--actor",
                    "seed-pretrained", "--simulator", "pwl", "--jobs", "1", "--quiet", "--out", str(out),
                    "--only", "startup-mc"], capture_output=True, text=True, timeout=600)
    t = pd.read_csv(out / "results.csv", keep_default_na=False)
    for who in ("nn", "teacher"):
        report = float(t[(t.controller == who) & (t.figure == "yield_pct")].iloc[0].value)
        assert props[f"{who}.yield_pct"] == pytest.approx(report)
