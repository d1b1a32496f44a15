"""Scenarios composed from parts (buckbi.converters.buck.scenarios): the line step in ngspice and on the fast
simulator, the two engines agreeing on the step scenarios, and the parts read the same way by both."""
from __future__ import annotations

import numpy as np
import pytest

from buckbi.nn.actors import resolve_actor
from buckbi.contract import EpisodeError
from buckbi.converters.buck import SCENARIOS, EpisodeParams, get_scenario, scenario_params
from buckbi.episodes.run import run_episode
from buckbi.evaluation.evaluate import figures
from buckbi.pwl.agreement import DEFAULT_STEP, deviation, violations
from buckbi.pwl.circuit import CircuitParseError, scenario_signals

MID = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0)
HIGH = EpisodeParams(vin=230.0, ro=20.0, Lo=50e-6, vref=100.0)  # 1.2 x 230 V is above vmax: capped at 250 V
FIGURE_TOL = 0.2  # figures (% of vref, ms) of the two engines on the same episode
SETTLED = 20e-3  # the step scenarios' agreement is judged from here on: see the test


def test_the_fast_model_reads_the_scenarios_parts():
    line = scenario_signals(get_scenario("linestep"), HIGH)
    np.testing.assert_allclose(line.vin_t, [0, 40e-3, 40.01e-3, 60e-3, 60.01e-3])
    np.testing.assert_allclose(line.vin_v, [230, 230, 250, 250, 230])  # min(1.2 vin, vmax)
    assert not line.current_load
    mid = scenario_signals(get_scenario("linestep"), MID)
    assert mid.vin_v.max() == pytest.approx(240.0)
    step = scenario_signals(get_scenario("loadstep"), MID)
    assert step.current_load and step.ld_v.tolist() == pytest.approx([1.25, 1.25, 10, 10, 1.25])
    start = scenario_signals(get_scenario("startup"), MID)
    assert start.vin_v.tolist() == [200.0] and start.ref_t.tolist() == pytest.approx([1e-6, 2.001e-3])


def test_a_part_with_an_element_the_fast_model_does_not_know_is_refused(tmp_path):
    import shutil

    from buckbi.pwl.circuit import PARTS
    parts = tmp_path / "parts"
    shutil.copytree(PARTS, parts)
    (parts / "load_rl.inc").write_text((parts / "load_rl.inc").read_text() + "C9 out 0 1u\n")
    with pytest.raises(CircuitParseError, match="C9"):
        scenario_signals(get_scenario("startup"), MID, parts=parts)


def test_step_scenarios_run_80_ms_and_refuse_shorter_episodes(tmp_path):
    assert scenario_params(MID, "linestep").steps == 3998
    with pytest.raises(EpisodeError, match="linestep scenario needs 80 ms"):
        run_episode("teacher", None, MID, tmp_path, "pwl", scenario="linestep")
    with pytest.raises(EpisodeError, match="runs a controller alone"):  # (the steps run in the gyms too: recipes)
        run_episode("gym1", None, MID, tmp_path, "pwl", scenario="fra")
    assert set(SCENARIOS) >= {"startup", "loadstep", "linestep"}


@pytest.mark.ltspice
def test_line_step_moves_vin_and_nnin16_follows_the_input_node(simulator, tmp_path):
    # NNin16 is the held V(in)/vmax (the reference's MUL on node in): it steps with the source, one hold later.
    params = scenario_params(HIGH, "linestep")
    ep = run_episode("deploy", resolve_actor("seed-pretrained"), params, tmp_path, simulator, scenario="linestep")
    t, nnin16 = ep.rows["time"].to_numpy(), ep.x[:, 15]
    for lo, hi, vin in ((20e-3, 39.9e-3, 230.0), (40.2e-3, 59.9e-3, 250.0), (60.2e-3, 80e-3, 230.0)):
        window = (t > lo) & (t < hi)
        np.testing.assert_allclose(nnin16[window], vin / params.vmax, atol=1e-6)
    f = figures(ep, "linestep")
    assert 0.05 < f["up_dev_%"] < 10 and f["up_rec_ms"] < 10  # the step disturbs Vout, and it recovers


def after(ep, t0: float):
    """The episode's rows from t0 on (a copy; by row number, so that both engines keep the same rows)."""
    import copy
    keep = np.arange(len(ep.rows)) >= round(t0 * ep.params.fsw)
    out = copy.copy(ep)
    out.rows = ep.rows[keep].reset_index(drop=True)
    out.x = ep.x[keep].copy()
    out.y = None if ep.y is None else ep.y[keep]
    out.pred = None if ep.pred is None else ep.pred[keep]
    return out


@pytest.mark.ltspice
@pytest.mark.parametrize("scenario", ["loadstep", "linestep"])
@pytest.mark.parametrize("gym", ["teacher", "deploy"])
def test_fast_simulator_agrees_with_ngspice_on_the_step_scenarios(simulator, tmp_path, scenario, gym):
    actor = resolve_actor("seed-pretrained") if gym == "deploy" else None
    params = scenario_params(MID, scenario)
    fast = run_episode(gym, actor, params, tmp_path / "fast", "pwl", scenario=scenario)
    spice = run_episode(gym, actor, params, tmp_path / "spice", simulator, scenario=scenario)
    # From 20 ms on (the steps are at 40 and 60 ms). Before it, the teacher's start-up under the current-source
    # load differs between the engines (ngspice's op-amp leaves its clamp later: 6.7 % vs 1.9 % overshoot at this
    # point, measured before and after the redesign alike); the README says so.
    fast_s, spice_s = after(fast, SETTLED), after(spice, SETTLED)
    dev = deviation(fast_s, spice_s)
    if gym == "deploy" and scenario == "linestep":
        # NNin16 holds V(in) at the ctrlclk edge 9.5 us into the 10 us ramp; default-step ngspice takes the value
        # of its last time point before the edge, up to T/20 earlier: the fast engine's exact value is up to the
        # ramp's slope x T/20 away there. Every other row and input is judged as usual.
        ramp = fast_s.x[:, 15] != np.roll(fast_s.x[:, 15], 1)
        bound = (0.2 * params.vin / 10e-6) * (1 / params.fsw / 20) / params.vmax
        assert np.abs(fast_s.x[ramp, 15] - spice_s.x[ramp, 15]).max() <= bound
        fast_s.x[ramp, 15] = spice_s.x[ramp, 15]
        dev = deviation(fast_s, spice_s)
    assert not violations(dev, DEFAULT_STEP), f"{gym} {scenario}: pwl vs default-step ngspice: {dev}"
    f_fast, f_spice = figures(fast, scenario), figures(spice, scenario)
    for name in ("up_dev_%", "up_rec_ms", "down_dev_%", "down_rec_ms"):
        assert abs(f_fast[name] - f_spice[name]) <= FIGURE_TOL, f"{name}: pwl {f_fast[name]:.3f}, " \
                                                                f"ngspice {f_spice[name]:.3f}"
