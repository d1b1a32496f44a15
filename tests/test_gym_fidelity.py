"""The gyms follow the reference's (real ngspice): e = Vo - ref, every hold at 0 V at t = 0, deploy with LIMIT,
the load-step scenario, and the reference's own published actor regulates in them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from buckbi.episodes.run import EpisodeParams, loadstep_params, run_episode
from buckbi.evaluation.evaluate import Thresholds, evaluate, figures
from buckbi.nn.netlist_actor import published_actor

pytestmark = pytest.mark.ltspice

START_STEPS = 16
POINT = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=START_STEPS)
INPUTS = [f"V(nnin{i})" for i in range(1, 20)]


def constant_actor(value: float) -> nn.Sequential:
    """Output ``value`` whatever the inputs (no output activation: exactly 1 is reachable)."""
    lin = nn.Linear(19, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.fill_(value)
    return nn.Sequential(lin).eval()


@pytest.mark.parametrize("gym,out", [("teacher", None), ("gym1", 1.0), ("gym2", 1.0), ("deploy", 1.0),
                                     ("gym2", 0.5), ("deploy", 0.5)])
def test_every_gym_starts_with_the_holds_at_zero_and_vout_at_zero(simulator, tmp_path, gym, out):
    # The reference's .machine sample-and-holds start at 0 V: duty 0, switch off, Vout 0, whoever drives the duty.
    actor = None if gym == "teacher" else constant_actor(out)
    ep = run_episode(gym, actor, POINT, tmp_path, simulator, keep_waveforms=True)
    first = ep.waveforms.iloc[0]
    assert first["time"] == 0.0
    # 0 but for the off switch's 1 MOhm, which leaks vin/1M into the load (4 mV here)
    assert abs(first["V(out)"]) < 1e-4 * POINT.vin, f"Vout at t = 0 is {first['V(out)']:.3f} V"
    assert abs(first["V(duty)"]) < 1e-9
    if gym != "teacher":
        held = first[INPUTS].to_numpy(dtype=float)
        assert np.abs(held).max() < 1e-4, f"held inputs at t = 0: {held}"  # Vout/vmax holds that leak: 1.6e-5
    # The first sampled row (one period in) is still near 0: at most ~1 period of full duty into 220 uF + ESR.
    assert ep.rows["V(out)"].iloc[0] < 0.01 * POINT.vin
    assert ep.rows["V(out)"].iloc[:3].is_monotonic_increasing or gym == "teacher"


def test_error_input_is_vout_minus_ref(simulator, tmp_path):
    ep = run_episode("gym1", constant_actor(0.5), EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=128),
                     tmp_path, simulator)
    x = ep.x
    np.testing.assert_allclose(x[:, 5], x[:, 0] - x[:, 16], atol=1e-9)  # NNin6 = NNin1 - NNin17 at the same edge
    assert np.ptp(x[:, 5]) > 1e-3  # a moving signal, so the identity tells the sign apart


def test_deploy_limits_the_nn_output_to_0_1(simulator, tmp_path):
    ep = run_episode("deploy", constant_actor(1.7), POINT, tmp_path, simulator)
    np.testing.assert_allclose(ep.pred, 1.7, atol=1e-9)
    np.testing.assert_allclose(ep.rows["V(duty)"].to_numpy()[2:], 1.0, atol=1e-6)


def test_teacher_load_step_scenario_steps_the_load_at_40_and_60_ms(simulator, tmp_path):
    ep = run_episode("teacher", None, loadstep_params(POINT), tmp_path, simulator, scenario="loadstep")
    assert ep.rows["time"].iloc[-1] == pytest.approx(80e-3, abs=2 / POINT.fsw)
    f = figures(ep, "loadstep")
    assert f["sse_%"] < 1.0
    # vref/80 -> vref/10 A (1.25 -> 10 A here) is a real disturbance: Vout dips by more than 0.5 %, then recovers.
    assert 0.5 < f["up_dev_%"] < 10 and 0.5 < f["down_dev_%"] < 10
    assert f["up_rec_ms"] < 10 and f["down_rec_ms"] < 10
    v = ep.rows.set_index("time")["V(out)"]
    assert v[(v.index > 40e-3) & (v.index < 41e-3)].min() < v[(v.index > 39e-3) & (v.index < 40e-3)].min()


# Held-out points chosen over the training range: light load in discontinuous conduction at high vin, heavy
# load at high duty, a mid point (none of them a training draw).
FIDELITY_POINTS = [EpisodeParams(vin=240.0, ro=80.0, Lo=95e-6, vref=60.0, steps=1024),
                   EpisodeParams(vin=150.0, ro=12.0, Lo=30e-6, vref=120.0, steps=1024),
                   EpisodeParams(vin=210.0, ro=25.0, Lo=60e-6, vref=95.0, steps=1024)]


def test_the_reference_published_actor_regulates_in_deploy(simulator, tmp_path):
    # A network trained in the reference's LTspice gyms, run as its exporter wrote it (LTspice if() syntax).
    table, _, _ = evaluate(published_actor(), FIDELITY_POINTS, tmp_path, simulator, jobs=2, teacher=False)
    misses = Thresholds(sse_pct=1.0, overshoot_pct=3.0).misses(table)
    assert misses.empty, "the published actor misses on:\n" + misses.to_string(index=False)
    assert np.isfinite(table["nn_settle_ms"]).all()


def test_the_duty_hold_takes_exactly_the_nn_command_with_a_trained_actor_in_the_loop(simulator, tmp_path):
    # gear (BDF2) used to extrapolate the NN output's last change into the held duty when that change lay
    # within the last two time points before the pwmclk edge: up to 0.2 of duty at this point from ~4 ms on,
    # and a limit cycle. The breakpoint cluster before each pwmclk edge (buck.inc) restarts the integration.
    from buckbi.nn.actors import resolve_actor
    params = EpisodeParams(vin=230.428, ro=10.5386, Lo=58.94e-6, vref=117.714, steps=400)
    ep = run_episode("deploy", resolve_actor("seed-pretrained"), params, tmp_path, simulator)
    expected = np.clip(ep.pred, 0.0, 1.0)
    err = np.abs(ep.rows["V(duty)"].to_numpy() - expected)[2:]  # row k's duty is NNout1 of row k's inputs
    assert err.max() <= 1e-6, f"held duty differs from the NN command by {err.max():.2e} at row {err.argmax() + 2}"
