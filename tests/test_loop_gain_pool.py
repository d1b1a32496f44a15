"""The loop-gain term over a pool of points: the rank-one T equal to the plain fixed-orbit T (values and gradients),
the pooled term equal to the plain mismatch point by point, and the learner and a resumed run with the pool on."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from buckbi.converters.buck.spec import EpisodeParams
from buckbi.loopgain import frequencies
from buckbi.loopgain.pop import FixedOrbitLoopGain, PopError, orbit_at_teacher
from buckbi.loopgain.rank_one import ConstantDuty, RankOneLoopGain, accumulators_for, jacobians
from buckbi.nn.actors import seed_pretrained_actor
from buckbi.nn.checkpoint import load_checkpoint, seed_actor
from buckbi.train import train
from buckbi.train.pool import LoopGainPool
from buckbi.train.signoff import SignoffImitation, mismatch
from buckbi.train.targets import teacher_target
from tests.test_recipes import TINY, _tiny

F = frequencies(50, 24e3, 3)
POINTS_CCM_DCM = [EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=64),
                  EpisodeParams(vin=175.0, ro=10.0, Lo=50e-6, vref=80.0, steps=64),
                  EpisodeParams(vin=240.0, ro=80.0, Lo=95e-6, vref=60.0, steps=64),  # discontinuous conduction
                  EpisodeParams(vin=150.0, ro=750.0, Lo=50e-6, vref=140.0, steps=64)]  # light, duty 0.93
# Sherman-Morrison against the solve at every frequency: measured within 5e-14 (relative) on T; 1e-10 asked
T_REL = 1e-10


@pytest.mark.parametrize("point", POINTS_CCM_DCM, ids=lambda p: f"{p.vin:g}-{p.vref:g}-{p.ro:g}")
def test_the_rank_one_loop_gain_is_the_fixed_orbit_one_values_and_gradients(point):
    net = seed_pretrained_actor()
    fixed = FixedOrbitLoopGain(net, point, orbit_at_teacher(net, point))
    plain = fixed.T(net, F)
    fast = RankOneLoopGain.of(fixed, F).T(jacobians(net, fixed.held[None])[0])
    assert float(((fast - plain).abs() / plain.abs()).max().detach()) < T_REL
    params = list(net.parameters())
    g_plain = torch.autograd.grad(torch.log(plain.abs()).sum() + torch.angle(plain).sum(), params)
    g_fast = torch.autograd.grad(torch.log(fast.abs()).sum() + torch.angle(fast).sum(), params)
    for a, b in zip(g_plain, g_fast):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7 * float(a.abs().max()))


def test_the_accumulator_solve_gives_the_duty_asked_row_by_row():
    net = seed_pretrained_actor()
    held = np.tile(np.r_[np.full(5, 0.4), np.full(5, -0.002), np.full(5, 0.5), 0.8, 0.4, 0.0, 0.0], (3, 1))
    duty = np.array([0.3, 0.5, 0.7])
    held[:, 18] = accumulators_for(net, held, duty)
    with torch.no_grad():
        out = net(torch.as_tensor(held, dtype=torch.float32))[:, 0].numpy()
    np.testing.assert_allclose(out, duty, atol=1e-6)


def test_the_pooled_term_is_the_mean_of_the_plain_mismatch_at_each_point():
    net = seed_pretrained_actor()
    pool = LoopGainPool(F, size=2)
    pool.add(POINTS_CCM_DCM[:2])
    pool.add(POINTS_CCM_DCM[2:])
    pool.refresh(net)
    assert len(pool) == len(POINTS_CCM_DCM)
    plain = []
    for p in POINTS_CCM_DCM:  # each point by the plain route: the NN's loop on the teacher's orbit, T by solves
        clean, teacher, _, T_teacher, weights = teacher_target(p, F)
        stand_in = ConstantDuty(teacher.orbit.duty)
        fixed = FixedOrbitLoopGain(stand_in, clean, orbit_at_teacher(stand_in, clean, teacher.orbit))
        fixed.held[18] = accumulators_for(net, fixed.held[None], np.array([teacher.orbit.duty]))[0]
        plain.append(mismatch(fixed.T(net, F), T_teacher, weights))
    # the network runs in float32, its rows batched here and one at a time there: measured 3e-8 apart
    assert float(pool.loss(net).detach()) == pytest.approx(float(torch.stack(plain).mean().detach()), rel=1e-6)
    pool.add([replace(POINTS_CCM_DCM[0], vin=151.0)])  # a third batch: the first one leaves
    assert [len(b) for b in pool.batches] == [2, 1]


def test_a_point_without_a_teacher_orbit_is_left_out_of_the_pool():
    # the teacher flip-unstable at twice the nominal ESR (benchmarks/teacher_flip.py: its critical pole 1.60)
    flip = EpisodeParams(vin=250.0, ro=10.0, Lo=50e-6, vref=140.0, steps=64, ESR=2 * 0.2449)
    with pytest.raises(PopError, match="unstable"):
        teacher_target(flip, F)
    pool = LoopGainPool(F, size=4)
    pool.add([flip, POINTS_CCM_DCM[0]])
    assert len(pool) == 1 and len(pool.batches[0]) == 2


def test_the_learner_with_a_pool_lowers_its_loss_and_holds_every_point():
    torch.manual_seed(0)
    recipe = replace(TINY, loop_gain_pool=3)
    learner = SignoffImitation(seed_actor(), recipe, lr=1e-3, epochs=30, seed=2)
    from tests.test_train import FakeRunner
    first = last = None
    for k in range(5):
        eps = FakeRunner()("gym1", learner.actor, [EpisodeParams(vin=180.0 + 10 * k + i, vref=100.0, ro=20.0,
                                                                 Lo=50e-6, steps=64) for i in range(2)], None)
        last = learner.update(eps)
        first = last if first is None else first
    assert np.isfinite(first) and last < first
    assert learner.last_terms["loop_gain_points"] == 6 and learner.last_terms["loop_gain"] > 0
    state = learner.state_dict()
    assert [[p["vin"] for p in b] for b in state["pool"]] == [[200.0, 201.0], [210.0, 211.0], [220.0, 221.0]]


def test_a_run_with_the_pool_resumed_ends_where_an_uninterrupted_one_does(tmp_path):
    pooled = replace(TINY, name="tiny", loop_gain_pool=2)
    whole = train(replace(_tiny(tmp_path, "a"), recipe=pooled))
    train(replace(_tiny(tmp_path, "c", episodes=8), recipe=pooled))
    resumed = train(replace(_tiny(tmp_path, "c"), recipe=pooled))
    a, _ = load_checkpoint(tmp_path / "a" / "actor_final.pth")
    c, _ = load_checkpoint(tmp_path / "c" / "actor_final.pth")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    assert list(resumed["loss_actor"]) == list(whole["loss_actor"])
