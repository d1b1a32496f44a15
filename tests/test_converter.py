"""Converter files: the reference buck as data (the same numbers as before), malformed files by the hundreds, the
teacher designed by the k-factor method meeting its target, a second converter on both engines, and a network
refused on a converter it was not trained for."""
from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buckbi.contract import EpisodeError
from buckbi.converters.buck.converter import (EXAMPLES, REFERENCE_FILE, ConverterError, check_same_converter,
                                              parse_converter, reference)
from buckbi.converters.buck.design import design_teacher, load_converter, measured
from buckbi.converters.buck.spec import EpisodeParams

MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
REFERENCE = tomllib.loads(REFERENCE_FILE.read_text())
EXAMPLE = tomllib.loads(EXAMPLES["buck-48v"].read_text())


def test_the_reference_file_gives_exactly_the_old_episode_parameters():
    ref = reference()
    # the literals buckbi carried before converter files (circuits/parts, spec.py)
    assert (ref.fsw, ref.vmax, ref.L1, ref.C1, ref.ESR, ref.RL1, ref.ESL, ref.Ron) == \
        (50e3, 250.0, 250e-6, 220e-6, 0.2449, 0.01, 12.9e-9, 0.01)
    assert ref.teacher.values() == {"g": 5.0, "fz1": 200.0, "fz2": 1e3, "fp1": 20e3, "fp2": 40e3}
    assert ref.params(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0) == EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6,
                                                                                 vref=100.0)
    assert load_converter(None) is ref and load_converter("reference").record() == ref.record()


def _broken(section: str, key: str, value):
    data = {k: dict(v) for k, v in REFERENCE.items()}
    if value is None:
        data[section].pop(key)
    else:
        data[section][key] = value
    return data


@pytest.mark.parametrize("section, key, value, says", [
    ("converter", "L1", -1e-6, "L1 = -1e-06 must be > 0"),
    ("converter", "C1", None, "C1 is missing"),
    ("converter", "topology", "boost", "topologies there are: buck"),
    ("converter", "fsw", "50k", "fsw = '50k' is not a number"),
    ("converter", "fsw", 50.0, "fsw = 50 Hz is outside"),
    ("converter", "vmax", 100.0, "above vmax"),
    ("converter", "Lbuck", 1e-6, "unknown key(s) Lbuck"),
    ("ranges", "vref", [50, 260], "a buck only steps down"),
    ("ranges", "ro", [80, 5], "need 0 < low <= high"),
    ("ranges", "vin", 150, "give [low, high]"),
    ("teacher", "fz1", None, "gives g, fz2, fp1, fp2 but not fz1"),
    ("teacher", "crossover_Hz", 2e3, "both values"),
    ("teacher", "fz2", 30e3, "fz1 <= fz2 < fp1 <= fp2"),
])
def test_every_bad_value_names_its_key_and_the_fix(section, key, value, says):
    with pytest.raises(ConverterError) as err:
        parse_converter(_broken(section, key, value), "my.toml")
    assert says in str(err.value) and "my.toml" in str(err.value)


def test_a_design_target_beyond_what_the_lc_allows_is_refused():
    data = {k: dict(v) for k, v in EXAMPLE.items()}
    data["teacher"] = {"crossover_Hz": 40e3, "phase_margin_deg": 70}  # 40 kHz on a 5 kHz LC behind a 200 kHz PWM
    with pytest.raises(ConverterError, match="lower crossover_Hz or phase_margin_deg"):
        conv = parse_converter(data, "fast.toml")
        design_teacher(conv, *conv.design_target)
    data["teacher"] = {"crossover_Hz": 50e3, "phase_margin_deg": 60}
    with pytest.raises(ConverterError, match="above fsw/5"):
        parse_converter(data, "fast.toml")


values = st.none() | st.booleans() | st.integers(-100, 1000) | st.floats(allow_nan=True, allow_infinity=True) \
    | st.text(max_size=6) | st.lists(st.floats(-10, 300) | st.integers(-5, 300), max_size=3)
KEYS = [*REFERENCE["converter"], *REFERENCE["ranges"], *REFERENCE["teacher"], "crossover_Hz", "phase_margin_deg", "x"]


@MANY
@given(section=st.sampled_from(["converter", "ranges", "teacher"]), changes=st.dictionaries(st.sampled_from(KEYS),
                                                                                            values, max_size=3))
def test_malformed_converter_files_fail_as_converter_errors(section, changes):
    data = {k: dict(v) for k, v in REFERENCE.items()}
    data[section] |= changes
    try:
        conv = parse_converter(data, "fuzz.toml")
    except ConverterError as err:
        assert "fuzz.toml" in str(err)
    else:  # what parses makes a valid operating point at the ranges' centre
        if conv.teacher is not None:
            conv.params(**conv.centre)


@MANY
@given(data=st.dictionaries(st.sampled_from(["converter", "ranges", "teacher", "x"]),
                            st.dictionaries(st.sampled_from(KEYS), values, max_size=4) | values, max_size=4))
def test_random_converter_structures_fail_as_converter_errors(data):
    try:
        parse_converter(data, "fuzz.toml")
    except ConverterError as err:
        assert str(err)


def test_a_missing_or_damaged_file_is_named(tmp_path):
    with pytest.raises(ConverterError, match="does not exist"):
        load_converter(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[converter\nname = 1")
    with pytest.raises(ConverterError, match="bad.toml is not valid TOML"):
        load_converter(bad)


def test_the_example_teacher_meets_its_design_target_by_pop():
    conv = load_converter("buck-48v")
    fc, pm = conv.design_target
    got_fc, got_pm = measured(conv, conv.teacher)
    assert abs(got_fc / fc - 1) < 0.02 and abs(got_pm - pm) < 1.0  # the design's own stopping rule: 2 %, 1 degree
    t = conv.teacher
    assert t.fz1 == t.fz2 < fc < t.fp1 == t.fp2 and t.fz1 * t.fp1 == pytest.approx(fc ** 2)  # k-factor symmetry


def test_the_init_plans_long_run_limit_is_what_the_teachers_rows_give_the_inputs_and_the_default_plans_5_at_least():
    from buckbi.converters.buck.plan_init import (_plan_data, limits_from, plan_corners, plan_tests,
                                                  teacher_input_reach)
    from buckbi.testplan.plan import load_plan, parse_plan
    ex = load_converter("buck-48v")
    corners = {k: v for k, v in plan_corners(ex).items() if k in ("vin36-vref22p1-full", "vin60-vref6p9-full")}
    plan = parse_plan(_plan_data(ex, corners, plan_tests(ex, corners)), "<init>", ex.source)
    reach = dict((c, v) for v, c in teacher_input_reach(plan))
    # the accumulator NNin19 while the teacher drives the start-up: beyond the reference's 5 at full load and 36 V in
    assert 7.0 < reach["vin36-vref22p1-full"] < 8.0
    assert reach["vin60-vref6p9-full"] == pytest.approx(1.0, abs=0.01)  # NNin16 = vin / vmax = 60 / 60 the largest there
    lim, why = limits_from({"longrun": {"max_abs_input": [(v, c) for c, v in reach.items()]}})["longrun"]["max_abs_input"]
    assert lim == 10.0 and "7.5" in why and "vin36-vref22p1-full" in why
    # the reference buck at its default plan's start-up corners: within 4, so the default plan's 5 stands
    ref_plan = load_plan("default")
    small = parse_plan({"plan": {"name": "r"}, "corners": {c.name: {"vin": c.vin, "vref": c.vref, "ro": c.ro, "Lo": c.Lo}
                                                          for c in ref_plan.corners.values() if c.name in ("vin150-vref100-half", "vin250-vref140-full")},
                        "tests": [{"name": "startup", "scenario": "startup", "corners": "all"}]})
    assert max(v for v, _ in teacher_input_reach(small)) < 4.0
    assert limits_from({"longrun": {"max_abs_input": teacher_input_reach(small)}})["longrun"]["max_abs_input"][0] == 5.0


def test_a_network_trained_for_one_converter_is_refused_on_another():
    ref, other = reference(), load_converter("buck-48v")
    check_same_converter(ref.record(), ref, "net")  # its own: fine
    with pytest.raises(EpisodeError, match="trained for converter 'reference', not 'buck-48v'.*--allow-other"):
        check_same_converter(ref.record(), other, "net")
    check_same_converter(ref.record(), other, "net", allow=True)
    check_same_converter(None, other, "net")  # a netlist: not known


def test_both_engines_read_the_converter_values(tmp_path):
    from buckbi.pwl.simulate import circuit
    conv = load_converter("buck-48v")
    p = conv.params(**conv.centre)
    c = circuit(p)
    assert (c.L, c.RL, c.C, c.Rc, c.Lc, c.ron, c.diode_rs) == (10e-6, 0.005, 100e-6, 0.01, 1e-9, 0.01, 0.01)
    assert c.period == pytest.approx(5e-6) and c.C3 == pytest.approx(1 / (2 * math.pi * 100e3 * conv.teacher.fz1))
    spice = p.spice_params()
    assert (spice["Lbuck"], spice["Rind"], spice["Lesl"], spice["Rsw"], spice["fz1"]) == \
        (10e-6, 0.005, 1e-9, 0.01, conv.teacher.fz1)
    drawn = replace(p, L1=12e-6)
    assert circuit(drawn).L == 12e-6 and circuit(p).L == 10e-6  # a tolerance draw moves the fast model too


# ---- every command and the plugin take the converter ------------------------------------------------------------

def test_the_reference_draws_and_nominal_point_are_todays():
    from buckbi.converters.buck.spec import NOMINAL, EpisodeParams
    from buckbi.evaluation.evaluate import held_out_points
    from buckbi.sweep.grid import default_grid, grid_points, parse_grid, point_key, random_points
    ref = reference()
    for seed in range(5):
        assert ref.random_point(np.random.default_rng(seed), steps=64) == \
            EpisodeParams.random(np.random.default_rng(seed), steps=64)
    assert ref.nominal == NOMINAL and held_out_points(3, 1, 64) == held_out_points(3, 1, 64, ref)
    assert default_grid() == "vin=150:250:5,vref=50:150:5,ro=5:80:3"  # the sweep's default before converter files
    points, invalid = grid_points(parse_grid(default_grid()), 64)
    assert len(points) == 72 and invalid == 3  # vref 150 at vin 150: not a buck
    assert points[0] == EpisodeParams(vin=150, vref=50, ro=5, Lo=50e-6, steps=64)
    assert point_key(points[0]) == "vin=150;vref=50;ro=5;Lo=5e-05;steps=64"  # resumed sweeps keep their keys
    assert random_points(2, 3, 64) == random_points(2, 3, 64, ref)


def test_evaluate_fra_and_sweep_points_come_from_the_converters_ranges():
    from buckbi.evaluation.evaluate import held_out_points
    from buckbi.loopgain import parse_point
    from buckbi.sweep.grid import default_grid, grid_points, parse_grid, point_key, random_points
    conv = load_converter("buck-48v")
    r = conv.ranges
    for p in held_out_points(20, 1, 64, conv) + random_points(20, 1, 64, conv):
        assert all(r[k][0] <= getattr(p, k) <= r[k][1] for k in ("vin", "vref", "ro", "Lo"))
        assert (p.fsw, p.L1, p.converter, p.g) == (conv.fsw, conv.L1, "buck-48v", conv.teacher.g)
    p = parse_point("vin=40", conv)
    assert (p.vin, p.vref, p.ro, p.Lo) == (40.0, conv.centre["vref"], conv.centre["ro"], conv.centre["Lo"])
    assert p.fsw == 200e3
    grid, _ = grid_points(parse_grid(default_grid(conv)), 64, conv)
    assert len(grid) == 75 and {q.vin for q in grid} == {36.0, 42.0, 48.0, 54.0, 60.0}
    assert point_key(grid[0]).startswith("vin=36;vref=5;ro=1;") and ";converter=buck-48v-" in point_key(grid[0])


def _buckbi(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True, timeout=900, cwd=cwd)


def test_fra_measures_the_converters_own_teacher_and_refuses_a_network_of_another(tmp_path):
    res = _buckbi("fra", "--actor", "pretrained", "--converter", "buck-48v", "--simulator", "pwl")
    assert res.returncode == 2 and "trained for converter 'reference', not 'buck-48v'" in res.stderr
    assert "--allow-other-converter" in res.stderr
    res = _buckbi("fra", "--actor", "pretrained", "--converter", "buck-48v", "--allow-other-converter", "--simulator",
                  "pwl", "--method", "pop", "--fstart", "1000", "--per-octave", "24", "--out", str(tmp_path / "fra"))
    assert res.returncode in (0, 1), res.stderr
    m = pd.read_csv(tmp_path / "fra" / "margins.csv").set_index("controller")
    fc, pm = load_converter("buck-48v").design_target  # the teacher designed for it, at the ranges' centre
    assert abs(m.loc["teacher", "crossover_Hz"] / fc - 1) < 0.02 and abs(m.loc["teacher", "phase_margin_deg"] - pm) < 1
    fra = pd.read_csv(tmp_path / "fra" / "fra.csv")
    assert fra["f_Hz"].max() == pytest.approx(100e3)  # up to its fsw/2 (margins read on the grid: 24 per octave)


def test_the_plugin_runs_the_converter_and_refuses_a_network_of_another(tmp_path):
    args = ["-m", "pytest", "--pyargs", "buckbi.checks.test_regulation", "--buckbi-simulator", "pwl",
            "--buckbi-regulation-scenarios", "fra", "--buckbi-regulation-points", "1", "-p", "no:cacheprovider", "-q",
            "--buckbi-actor", "pretrained", "--buckbi-converter", "buck-48v"]
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 1 and "trained for converter 'reference', not 'buck-48v'" in res.stdout, res.stdout[-3000:]
    assert "--buckbi-allow-other-converter" in res.stdout
    res = subprocess.run([sys.executable, *args[:-4], "--buckbi-converter", "nothing.toml"], capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 4 and "--buckbi-converter" in res.stderr and "nothing.toml" in res.stderr, res.stderr


def test_an_imported_netlist_records_the_converter_it_was_made_for(tmp_path):
    from buckbi.nn.actors import DATA, resolve_actor, trained_for
    out = tmp_path / "net.pth"
    res = _buckbi("import", str(DATA / "reference_actor.sp"), "--out", str(out), "--converter", "nothing.toml")
    assert res.returncode == 2 and "nothing.toml" in res.stderr and not out.exists()  # nothing written half
    res = _buckbi("import", str(DATA / "reference_actor.sp"), "--out", str(out), "--converter", "buck-48v")
    assert res.returncode == 0 and "for converter buck-48v" in res.stdout, res.stderr
    assert trained_for(resolve_actor(str(out)))["name"] == "buck-48v"
    res = _buckbi("export", str(out), "--out", str(tmp_path / "net.sp"))
    assert res.returncode == 0 and "trained for converter buck-48v" in res.stdout and "/ 60 V" in res.stdout
    res = _buckbi("fra", "--actor", str(out), "--simulator", "pwl", "--method", "pop", "--out", str(tmp_path / "f"))
    assert res.returncode == 2 and "trained for converter 'buck-48v', not 'reference'" in res.stderr


def test_an_exported_netlist_carries_its_converter_and_every_command_reads_it_back(tmp_path):
    from buckbi.converters.buck.converter import NETLIST_NOTE
    from buckbi.nn.actors import DATA, resolve_actor, trained_for
    pth, sp = tmp_path / "net.pth", tmp_path / "net.sp"
    assert _buckbi("import", str(DATA / "reference_actor.sp"), "--out", str(pth), "--converter", "buck-48v").returncode == 0
    assert _buckbi("export", str(pth), "--out", str(sp)).returncode == 0
    text = sp.read_text()
    assert text.count(NETLIST_NOTE) == 1 and text.index(NETLIST_NOTE) < text.index(".subckt")
    # the netlist itself, run in SPICE
    assert trained_for(resolve_actor(netlist=str(sp))) == load_converter("buck-48v").record()
    res = _buckbi("evaluate", "--netlist", str(sp), "--points", "1", "--out", str(tmp_path / "e"))
    assert res.returncode == 2 and "trained for converter 'buck-48v', not 'reference'" in res.stderr, res.stderr[-2000:]
    back = tmp_path / "back.pth"  # imported again: the header's converter without --converter
    res = _buckbi("import", str(sp), "--out", str(back))
    assert res.returncode == 0 and "for converter buck-48v" in res.stdout, res.stderr
    assert trained_for(resolve_actor(str(back))) == load_converter("buck-48v").record()
    res = _buckbi("import", str(sp), "--out", str(tmp_path / "other.pth"), "--converter", "reference")
    assert res.returncode == 2 and "trained for converter 'buck-48v'" in res.stderr and not (tmp_path / "other.pth").exists()
    res = _buckbi("import", str(sp), "--out", str(tmp_path / "other.pth"), "--converter", "reference",
                  "--allow-other-converter")
    assert res.returncode == 0 and "for converter reference" in res.stdout
    # a reference-buck network's export is what it always was: no such line
    assert _buckbi("export", str(DATA / "pretrained_actor.pth"), "--out", str(tmp_path / "ref.sp")).returncode == 0
    assert NETLIST_NOTE not in (tmp_path / "ref.sp").read_text()


def test_the_shipped_example_network_keeps_its_margin_where_the_teacher_has_least_and_is_refused_on_the_reference():
    """buckbi/data/buck48v_actor.pth (docs/converters.md, "Proof on the example"): POP + AC at the example plan's two
    corners of least margin for the teacher and for the network's kin (60 V / 22.1 V, 48 V / 14.5 V, half load)."""
    from buckbi.loopgain.margins import margins
    from buckbi.loopgain.pop import loop_gain
    from buckbi.nn.actors import DATA
    from buckbi.nn.checkpoint import load_checkpoint
    actor, meta = load_checkpoint(DATA / "buck48v_actor.pth")
    conv = load_converter("buck-48v")
    check_same_converter(meta["converter"], conv, "buck48v_actor.pth")  # its own: fine
    with pytest.raises(EpisodeError, match="trained for converter 'buck-48v', not 'reference'"):
        check_same_converter(meta["converter"], reference(), "buck48v_actor.pth")
    f = np.geomspace(40.0, 100e3, 34)  # the plan's band, 3 per octave
    for vin, vref in ((60.0, 22.1), (48.0, 14.5)):
        p = conv.params(vin=vin, vref=vref, ro=2.0, Lo=1.58e-6, steps=2048)
        nn, teacher = (margins(f, loop_gain(who, actor if who == "nn" else None, p, f).T) for who in ("nn", "teacher"))
        # the plan's limit; on this grid the network keeps 56-60 degrees, the teacher 54-56
        assert nn.phase_margin_deg >= 45.0 and teacher.phase_margin_deg >= 45.0
        assert nn.gain_margin_dB >= 6.0 and abs(nn.crossover_Hz / teacher.crossover_Hz - 1) < 0.25
