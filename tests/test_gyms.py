"""Proofs 2-4 of the gyms in real ngspice: exact delay lines, gym-2/deploy wiring, NN equivalence in the loop.

The equivalence check of the actor under test (--actor) lives in buckbi/checks/test_loop_checks.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from buckbi import EpisodeError, EpisodeParams, run_episode, run_episodes
from buckbi.nn.checkpoint import seed_actor

pytestmark = pytest.mark.ltspice

STEPS = 512
DELAY_TOL = 1e-6  # held values are copied through switch+capacitor stages
EQUIV_TOL = 1e-6  # NNout1 in the loop vs the PyTorch actor on the same sampled inputs


def random_actor(seed: int = 7) -> nn.Sequential:
    torch.manual_seed(seed)
    return seed_actor().double().eval()


def constant_duty_actor(duty: float) -> nn.Sequential:
    """An actor whose output is ``duty`` whatever its inputs: zero weights, bias logit(duty), Sigmoid."""
    lin = nn.Linear(19, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.fill_(math.log(duty / (1 - duty)))
    return nn.Sequential(lin, nn.Sigmoid()).eval()


@pytest.fixture(scope="module")
def gym1_episode(simulator, tmp_path_factory):
    actor = random_actor()
    params = EpisodeParams(vin=210.0, ro=12.0, Lo=40e-6, vref=95.0, steps=STEPS)
    return actor, run_episode("gym1", actor, params, tmp_path_factory.mktemp("gym1"), simulator)


def col(ep, i: int) -> np.ndarray:
    return ep.x[:, i - 1]


def test_one_sampled_row_per_control_period(gym1_episode):
    _, ep = gym1_episode
    assert ep.x.shape == (STEPS + 1, 19)  # STEPS + 2 falling edges, last row dropped
    np.testing.assert_allclose(np.diff(ep.rows["time"]), 1 / ep.params.fsw, rtol=1e-6)


@pytest.mark.parametrize("first", [1, 6, 11], ids=["vout", "error", "duty"])
def test_delay_chains_shift_exactly_one_period(gym1_episode, first):
    _, ep = gym1_episode
    for k in range(first, first + 4):
        shift = np.abs(col(ep, k + 1)[1:] - col(ep, k)[:-1])
        assert shift.max() <= DELAY_TOL, f"NNin{k + 1}[t] != NNin{k}[t-1]: worst {shift.max():.2e}"
    assert np.ptp(col(ep, first)) > 1e-3  # the chain carries a signal that moves, not a constant


def test_duty_difference_and_vin_inputs(gym1_episode):
    _, ep = gym1_episode
    assert np.abs(col(ep, 18) - (col(ep, 11) - col(ep, 12))).max() <= DELAY_TOL
    assert np.abs(col(ep, 16) - ep.params.vin / ep.params.vmax).max() <= DELAY_TOL


def test_accumulator_adds_the_error_held_at_the_same_edge(gym1_episode):
    # NNin19's hold samples NNin19 + k*e just before the rising edge; NNin6 samples e at that same edge.
    _, ep = gym1_episode
    step = np.diff(col(ep, 19))
    assert np.abs(step - 1.0 * col(ep, 6)[1:]).max() <= DELAY_TOL
    assert np.abs(col(ep, 19)).max() > 0.1  # it did accumulate


def test_inputs_are_normalised_plant_signals(gym1_episode):
    _, ep = gym1_episode
    vmax, vref = ep.params.vmax, ep.params.vref
    tail = slice(-len(ep.rows) // 4, None)
    np.testing.assert_allclose(col(ep, 17)[tail], vref / vmax, atol=1e-9)  # soft start long over
    np.testing.assert_allclose(col(ep, 1)[tail], vref / vmax, atol=0.01 * vref / vmax)  # teacher regulates
    np.testing.assert_allclose(col(ep, 6), col(ep, 1) - col(ep, 17), atol=1e-9)  # e = Vo - ref, same edge


@pytest.mark.parametrize("gym", ["gym2", "deploy"])
def test_nn_drives_the_duty(simulator, tmp_path, gym):
    params = EpisodeParams(vin=200.0, ro=10.0, Lo=30e-6, vref=90.0, steps=STEPS)  # CCM; teacher wants more
    ep = run_episode(gym, constant_duty_actor(0.4), params, tmp_path, simulator)
    np.testing.assert_allclose(ep.pred, 0.4, atol=1e-9)
    np.testing.assert_allclose(ep.rows["V(duty)"].to_numpy()[5:], 0.4, atol=1e-6)
    vout = ep.rows["V(out)"].to_numpy()[-len(ep.rows) // 4:]
    assert abs(vout.mean() - 0.4 * params.vin) < 0.02 * 0.4 * params.vin, f"Vout settled at {vout.mean():.2f} V"
    if gym == "gym2":
        assert np.ptp(ep.y) > 0.05, "the teacher's label should still follow the plant"
    else:
        assert ep.y is None


@pytest.mark.slow
def test_full_length_gym1_episode_equivalence(simulator, tmp_path):
    actor = random_actor(11)
    ep = run_episodes("gym1", actor, [EpisodeParams.random(np.random.default_rng(5))], tmp_path, simulator)[0]
    assert not isinstance(ep, Exception), ep
    assert ep.x.shape == (2049, 19)
    with torch.no_grad():
        expected = actor(torch.from_numpy(ep.x.copy())).numpy().ravel()
    assert np.abs(ep.pred - expected).max() <= EQUIV_TOL


def test_gym1_in_ltspice_compatibility_mode_with_the_ltspice_dialect(tmp_path):
    # LTspice cannot run here; ngspice's LTspice mode (ltpsa) reading the ltspice-dialect export is the check.
    from buckbi.sim import NgspiceBackend
    backend = NgspiceBackend(compatibility="ltpsa")
    if not backend.is_available():
        pytest.skip("ngspice not found")
    actor = random_actor(3)
    ep = run_episode("gym1", actor, EpisodeParams(vin=180.0, ro=30.0, Lo=60e-6, vref=90.0, steps=64), tmp_path,
                     backend)
    assert "(ltspice dialect" in (tmp_path / "ep0_actor.sp").read_text().splitlines()[0]
    with torch.no_grad():
        expected = actor(torch.from_numpy(ep.x.copy())).numpy().ravel()
    assert np.abs(ep.pred - expected).max() <= EQUIV_TOL


def test_gym1_network_outside_the_circuit_gives_the_seeds_rows(simulator, tmp_path):
    # Default on ngspice: the loop runs without the network, NNout1 comes from the exported subcircuit on the
    # sampled rows (one DC sweep). The seed's form keeps it in the circuit. The network's nodes change where
    # ngspice puts its time points, so the rows agree within ngspice's own step error, not bit for bit
    # (measured: both are 0.106 % of vin from T/400 ngspice, 0.09 % from each other).
    from buckbi.pwl.agreement import DEFAULT_STEP, deviation, violations
    actor = random_actor(5)
    params = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=300)
    split = run_episode("gym1", actor, params, tmp_path / "split", simulator)
    seed_form = run_episode("gym1", actor, params, tmp_path / "in", simulator, nn_in_circuit=True)
    assert list(split.rows.columns) == list(seed_form.rows.columns)
    assert not violations(deviation(split, seed_form), DEFAULT_STEP)
    for ep in (split, seed_form):
        with torch.no_grad():
            expected = actor(torch.from_numpy(ep.x.copy())).numpy().ravel()
        assert np.abs(ep.pred - expected).max() <= EQUIV_TOL
    assert not (tmp_path / "split" / "ep0_param.txt").read_text().count("X99")
    with pytest.raises(EpisodeError, match="only gym 1"):
        run_episode("gym2", actor, params, tmp_path / "g2", simulator, nn_in_circuit=False)
