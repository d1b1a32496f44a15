"""Training recipes: the seed's kept as it was, the sign-off recipe's episodes carry what they claim, its loss terms,
reproducibility and an exact resume (the fast engine; the SPICE side under the ltspice marker)."""
from __future__ import annotations

import math
import copy
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import buckbi
from buckbi.converters.buck.spec import EpisodeParams
from buckbi.episodes.run import run_episode
from buckbi.nn.checkpoint import CheckpointError, fresh_actor, load_checkpoint, seed_actor
from buckbi.train import TrainConfig, Trainer, train
from buckbi.train.recipes import HOLDOUT, RECIPES, RecipeError, ablation, get_recipe
from buckbi.train.targets import crossover_weights
from buckbi.train.signoff import (LoopGainTarget, SignoffImitation, fit_loss, input_steps, labelled,
                                  least_phase_margin, loop_gain_loss, margin_loss, mismatch, noisy_history,
                                  rail_rows_kept, relative_weights, shifted_accumulator, stability_loss)

SIGNOFF = get_recipe("signoff")
# The sign-off recipe cut down to seconds: the same ingredients, short episodes, few steps.
TINY = ablation("signoff", name="tiny", episodes=12, jobs=4, epochs=10, steps=400, duration_ms=8.0,
                soft_start_ms=(0.5, 1.5), step_ms=(2.5, 3.5), back_ms=(5.0, 6.0), dagger_after=4, replay=2,
                minibatch=64, loop_gain_points=1, average=0.8, transient_weight=5.0, select_every=4, select_after=8,
                select_points=2)


def test_the_seed_recipe_draws_what_the_seed_drew():
    seed = get_recipe("seed")
    for ep in (1, 2, 301, 500):
        plan = seed.plan(7, ep)
        assert plan.params == EpisodeParams.random(np.random.default_rng([7, ep]), steps=2048)
        assert plan.scenario == "startup" and plan.settings == {}
        assert plan.gym == ("gym1" if ep <= 300 else "gym2")
    assert (seed.epochs, seed.lr, seed.jobs, seed.schedule) == (200, 1e-4, 1, "gym1:300,gym2:200")


def test_signoff_draws_are_reproducible_varied_and_keep_out_of_the_held_out_corners():
    plans = [SIGNOFF.plan(3, ep) for ep in range(1, 801)]
    assert plans[10] == SIGNOFF.plan(3, 11) and plans[10] != SIGNOFF.plan(4, 11)
    scenarios = [p.scenario for p in plans]
    for name, weight in SIGNOFF.scenarios:
        assert scenarios.count(name) / len(plans) == pytest.approx(weight, abs=0.06), name
    late = [p.gym for p in plans[SIGNOFF.dagger_after:]]
    assert all(p.gym == "gym1" for p in plans[:SIGNOFF.dagger_after])
    assert late.count("gym2") / len(late) == pytest.approx(SIGNOFF.dagger_share, abs=0.06)
    dv, dr = SIGNOFF.holdout_box
    for p in plans:
        q = p.params
        assert not any(abs(q.vin - v) < dv and abs(q.vref - r) < dr for v, r in HOLDOUT)
        assert 0.8 * 250e-6 <= q.L1 <= 1.2 * 250e-6 and 0.2449 / 2 <= q.ESR <= 0.2449 * 2
        assert 0 <= q.noise_mV <= 100
    refsteps = [p.settings["step_pct"] for p in plans if p.scenario == "refstep"]
    assert min(refsteps) < -5 and max(refsteps) > 5  # up and down
    assert {p.params.steps for p in plans if p.scenario != "startup"} == {round(41e-3 * 50e3) - 2}


def test_an_unknown_recipe_or_a_contradictory_one_is_refused():
    with pytest.raises(RecipeError, match="choose one of seed, signoff"):
        get_recipe("fast")
    with pytest.raises(RecipeError, match="dagger_share"):
        ablation("signoff", dagger_share=1.5)
    with pytest.raises(ValueError, match="recipe"):
        Trainer(TrainConfig(recipe="nope"))
    with pytest.raises(RecipeError, match="fit_loss is 'mse' or 'bce'"):
        ablation("signoff", fit_loss="mae")


def _plan_of(recipe, scenario: str, seed: int = 1):
    return next(p for ep in range(1, 400) if (p := recipe.plan(seed, ep)).scenario == scenario)


def test_a_reference_step_moves_nnin17_at_its_row(tmp_path):
    plan = _plan_of(TINY, "refstep")
    ep = run_episode("gym1", seed_actor(), plan.params, tmp_path, "pwl", scenario="refstep", settings=plan.settings)
    p, st = plan.params, plan.settings
    ref = ep.x[:, 16] * p.vmax
    moved = np.flatnonzero(np.abs(ref - p.vref) > 1e-6 * p.vref)
    after_soft_start = moved[moved * 1e3 / p.fsw > st["soft_start_ms"] + 0.1]
    first = after_soft_start[0]
    assert abs((first + 1) / p.fsw * 1e3 - st["t_step_ms"]) < 2 / p.fsw * 1e3  # within two periods of the step
    assert ref[first + 2] == pytest.approx(p.vref * (1 + st["step_pct"] / 100), rel=1e-6)
    # NNin6..10 (the error) moves with it, NNin1..5 (Vo) does not jump: the rows tell e from Vo
    assert abs(ep.x[first + 2, 5] - ep.x[first - 2, 5]) > 0.5 * abs(st["step_pct"]) / 100 * p.vref / p.vmax
    assert abs(ep.x[first + 1, 0] - ep.x[first - 1, 0]) < 0.2 * abs(st["step_pct"]) / 100 * p.vref / p.vmax


def test_the_excitation_has_the_rms_asked_for_and_the_teacher_labels_its_response(tmp_path):
    from dataclasses import replace
    plan = _plan_of(TINY, "startup")
    noisy = replace(plan.params, noise_mV=60.0)
    actor = seed_actor()
    ep = run_episode("gym1", actor, noisy, tmp_path / "n", "pwl", keep_waveforms=True)
    clean = run_episode("gym1", actor, replace(noisy, noise_mV=0.0), tmp_path / "c", "pwl")
    from buckbi.pwl.simulate import circuit
    c, w = circuit(noisy), ep.waveforms
    ts = np.arange(noisy.steps + 1) / noisy.fsw + c.t_ctrl + c.master_vt * c.edge  # the sampling instants
    seen = np.interp(ts, w["time"], w["V(vsense)"]) - np.interp(ts, w["time"], w["V(out)"])
    assert seen.std() == pytest.approx(0.060, rel=0.1)  # the sensed Vout carries the rms asked for
    assert np.abs(seen - noisy.noise_volts()[:len(seen)]).max() < 1e-8
    assert np.abs(ep.y - clean.y).max() > 1e-3  # the teacher's duty (the label) responds to what it reads


@pytest.mark.ltspice
@pytest.mark.parametrize("scenario,noise_seed", [("refstep", None), ("loadstep", None),
                                                 # the first noise value -2.26 and +2.35 sigma: SPICE's operating
                                                 # point at t = 0 once read the first as a DC error (the teacher's
                                                 # integrator at a rail, duty 1 in the first period: Vout 18 % of vin
                                                 # apart; ./buckbi.sh train --seed 2 stopped at its first check)
                                                 ("startup", 8), ("startup", 22)])
def test_the_recipes_labelled_episodes_agree_in_ngspice(simulator, tmp_path, scenario, noise_seed):
    from dataclasses import replace
    from buckbi.pwl.agreement import check_step, deviation, tolerance_for, violations
    plan = _plan_of(TINY, scenario)
    params = replace(plan.params, noise_mV=30.0 if noise_seed is None else 100.0)
    if noise_seed is not None:
        params = replace(params, noise_seed=noise_seed)
        assert abs(params.noise_volts()[0]) > 0.2  # the case that failed: far from 0 at t = 0
    actor = seed_actor()
    fast = run_episode("gym1", actor, params, tmp_path / "f", "pwl", scenario=scenario, settings=plan.settings)
    step = check_step(params.fsw)
    spice = run_episode("gym1", actor, params, tmp_path / "s", simulator, scenario=scenario,
                        settings=plan.settings, max_step=step)
    dev = deviation(fast, spice)
    assert not violations(dev, tolerance_for(step, params.fsw)), dev
    assert np.abs(fast.y - spice.y).max() < 0.02  # the labels: the teacher's response, alike in both


# Parts of the tolerance table (ESR 1.84 x nominal, L1 -17 %, C1 -16 %) at which the teacher's loop is flip-unstable:
# drawn by the signoff recipe for seed 4's episode 1599 (vin 208 V, vref 126.6 V, 31.4 Ohm).
FLIP = dict(vin=208.0, vref=126.6, ro=31.4, Lo=57.4e-6, L1=207.9e-6, C1=183.9e-6)


@pytest.mark.parametrize("simulator_name", ["pwl", pytest.param("ngspice", marks=pytest.mark.ltspice)])
def test_the_teacher_oscillates_where_pop_calls_its_loop_unstable(simulator_name, request, tmp_path):
    from buckbi.loopgain.pop import Loop, critical_pole, find_orbit
    from buckbi.nn.actors import resolve_actor
    sim = request.getfixturevalue("simulator") if simulator_name == "ngspice" else "pwl"
    actor = resolve_actor("pretrained")  # gym 1: the teacher drives, the network only reads
    swing = {}
    for esr in (0.2449, 0.45):  # nominal, and 1.84 x (the table's ESR x0.5..2)
        p = EpisodeParams(**FLIP, ESR=esr, steps=600)
        loop = Loop("teacher", None, p)
        rho = critical_pole(loop, find_orbit(loop))
        ep = run_episode("gym1", actor, p, tmp_path / f"e{esr}", sim)
        duty = ep.rows["V(tduty)"].to_numpy()[300:600]
        swing[esr] = (rho, float(np.mean(np.abs(np.diff(duty)))))
    assert swing[0.2449][0] < 0.99 and swing[0.2449][1] < 1e-3  # measured 0.982, 0.000
    assert swing[0.45][0] > 1.3 and swing[0.45][1] > 0.5  # measured 1.478; the duty 0.13 / 0.99 period by period


def test_the_loop_gain_weight_ramps_from_its_start_to_its_final_value():
    from buckbi.train.recipes import with_settings
    ramp = with_settings("signoff", ["loop_gain_weight_final=0.05"])
    last = ramp.updates - 1
    assert ramp.loop_gain_weight_at(0) == SIGNOFF.loop_gain_weight == 0.01
    assert ramp.loop_gain_weight_at(last) == pytest.approx(0.05)
    assert ramp.loop_gain_weight_at(last // 2) == pytest.approx(0.03, abs=2e-4)  # half way along the half cosine
    assert ramp.loop_gain_weight_at(10 * last) == pytest.approx(0.05)  # --episodes past the recipe's end: held
    steps = np.diff([ramp.loop_gain_weight_at(u) for u in range(ramp.updates)])
    assert (steps >= 0).all()
    assert SIGNOFF.loop_gain_weight_at(last) == 0.01  # constant where no final weight is given
    with pytest.raises(RecipeError, match="loop_gain_weight_final"):
        ablation("signoff", loop_gain_weight_final=-1.0)


def test_visited_points_are_the_episodes_operating_points():
    from buckbi.train.recipes import visited_points
    p = EpisodeParams(vin=200.0, vref=100.0, ro=20.0, Lo=50e-6)
    assert visited_points(p, "startup", {}) == [p]
    assert [q.vref for q in visited_points(p, "refstep", {"step_pct": -10.0})] == [100.0, 90.0]
    assert [q.vin for q in visited_points(p, "linestep", {"step_pct": 15.0})] == [200.0, pytest.approx(230.0)]
    assert [q.ro for q in visited_points(p, "loadstep", {"light_ohm": 60.0, "heavy_ohm": 8.0})] == [60.0, 8.0]


def test_stable_teacher_redraws_the_episodes_whose_teacher_loop_is_unstable():
    from buckbi.train.recipes import teacher_unstable, with_settings
    assert teacher_unstable(EpisodeParams(**FLIP, ESR=0.2449), "startup", {}) == ""
    assert "unstable (critical pole 1.4" in teacher_unstable(EpisodeParams(**FLIP, ESR=0.45), "startup", {})
    stable = with_settings("signoff", ["stable_teacher=True"])
    assert stable.name == "signoff+stable_teacher=True" and not SIGNOFF.stable_teacher
    with pytest.raises(RecipeError, match="True or False"):
        with_settings("signoff", ["stable_teacher=1"])
    unstable = [ep for ep in range(1, 41)
                if teacher_unstable(*(lambda pl: (pl.params, pl.scenario, pl.settings))(SIGNOFF.plan(4, ep)))]
    assert len(unstable) >= 2  # 27 of the first 400 episodes of seed 4 (6.8 %)
    for ep in unstable:
        plan = stable.plan(4, ep)
        assert plan.params != SIGNOFF.plan(4, ep).params
        assert teacher_unstable(plan.params, plan.scenario, plan.settings) == ""
    kept = next(ep for ep in range(1, 41) if ep not in unstable)
    assert stable.plan(4, kept) == SIGNOFF.plan(4, kept)  # a draw whose teacher is stable is kept as it was


def test_the_loop_gain_term_is_zero_for_the_teacher_law_and_grows_with_a_mismatch():
    from buckbi.nn.actors import resolve_actor
    actor = resolve_actor("seed-pretrained")
    p = EpisodeParams(vin=200.0, vref=100.0, ro=20.0, Lo=50e-6)
    target = LoopGainTarget(actor, p, SIGNOFF.frequencies())
    own = float(target.loss(actor).detach())
    assert own > 0.05  # the seed-pretrained actor's 6-15 degrees of margin: its T is not the teacher's
    # its gradient points downhill: one small step along -grad lowers it
    loss = target.loss(actor)
    grads = torch.autograd.grad(loss, list(actor.parameters()))
    with torch.no_grad():
        for w, g in zip(actor.parameters(), grads):
            w -= 1e-3 * g / max(float(g.abs().max()), 1e-12)
    assert float(target.loss(actor).detach()) < own
    assert float(loop_gain_loss(actor, [])) == 0.0


def test_the_pole_hinge_is_zero_inside_its_radius_and_pulls_an_outlying_pole_in():
    from buckbi.nn.actors import resolve_actor
    from buckbi.loopgain.pop import _loop_states
    actor = resolve_actor("seed-pretrained")
    p = EpisodeParams(vin=200.0, vref=100.0, ro=20.0, Lo=50e-6)
    target = LoopGainTarget(actor, p, SIGNOFF.frequencies(), stability_share=0.5)
    M = target.fixed.period_map(target.fixed.sample_matrix(actor)).detach().real.numpy()
    keep = _loop_states(target.fixed.loop, M)
    rho = float(np.abs(np.linalg.eigvals(M[np.ix_(keep, keep)])).max())
    assert 0.9 < rho < 1.0 and 0.9 < target.radius < 1.0
    assert float(target.excess_pole(actor).detach()) == pytest.approx(max(0.0, rho - target.radius), abs=1e-9)
    target.radius = rho - 0.01  # a radius the network's critical pole lies beyond: the hinge is its distance
    excess = stability_loss(actor, [target])
    assert float(excess.detach()) == pytest.approx(0.01, rel=1e-6)
    grads = torch.autograd.grad(excess, list(actor.parameters()))
    with torch.no_grad():
        for w, g in zip(actor.parameters(), grads):
            w -= 1e-3 * g / max(float(g.abs().max()), 1e-12)
    assert float(target.excess_pole(actor).detach()) < 0.01  # one small step along -grad moves the pole in
    assert float(stability_loss(actor, [])) == 0.0


def test_the_least_phase_margin_reads_as_python_control_does_and_the_margin_hinge_raises_it():
    from buckbi.loopgain.margins import margins
    from buckbi.nn.actors import resolve_actor
    f = np.geomspace(10.0, 24e3, 35)
    for T in (1e3 / (1j * f), 2e3 / (1j * f * (1 + 1j * f / 1.5e3)), 1e6 / (1j * f) ** 2 * (1 + 1j * f / 300)):
        pm = least_phase_margin(torch.from_numpy(T), f)
        assert np.degrees(float(pm)) == pytest.approx(margins(f, T).phase_margin_deg, abs=0.5)
    assert least_phase_margin(torch.from_numpy(0.5 / (1 + 1j * f)), f) is None  # |T| < 1 everywhere
    # a resonance: |T| crosses 1 three times, with margins 61.6, -81.4 (the phase wrapped past -180 to +100 while
    # |T| < 1: far from -1) and 113 degrees (the phase falls through 180 between two grid points); the binding one is
    # the nearest 0, as python-control reports
    fr = np.array([100.0, 200.0, 300.0, 400.0, 800.0, 1600.0, 3200.0])
    mag, deg = np.array([3.0, 0.5, 0.4, 2.0, 4.0, 0.5, 0.2]), np.array([-100.0, -130.0, 110.0, 90.0, 20.0, -110.0, -120.0])
    pm = least_phase_margin(torch.from_numpy(mag * np.exp(1j * np.radians(deg))), fr)
    assert np.degrees(float(pm)) == pytest.approx(80 - 30 * np.log(3) / np.log(6), abs=1e-6)
    actor = resolve_actor("seed-pretrained")  # 6-15 degrees of margin in continuous conduction
    p = EpisodeParams(vin=200.0, vref=100.0, ro=20.0, Lo=50e-6)
    target = LoopGainTarget(actor, p, SIGNOFF.frequencies())
    T = target.fixed.T(actor, target.f).detach().numpy()
    own = np.degrees(float(least_phase_margin(torch.from_numpy(T), target.f)))
    fine = np.geomspace(50.0, 24e3, 430)  # 48 points per octave: python-control's reading, converged
    exact = margins(fine, target.fixed.T(actor, fine).detach().numpy()).phase_margin_deg
    assert own == pytest.approx(exact, abs=1.0) and own < 30  # measured 0.3-1.0 off on 3 points per octave
    hinge = margin_loss(actor, [target], 45.0)
    assert float(hinge.detach()) == pytest.approx(np.radians(45.0 - own) ** 2, rel=1e-3)
    assert float(margin_loss(actor, [target], own - 1.0).detach()) == 0.0  # above its floor: no pull
    grads = torch.autograd.grad(hinge, list(actor.parameters()))
    with torch.no_grad():
        for w, g in zip(actor.parameters(), grads):
            w -= 1e-3 * g / max(float(g.abs().max()), 1e-12)
    T = target.fixed.T(actor, target.f).detach()
    assert np.degrees(float(least_phase_margin(T, target.f))) > own  # one small step along -grad raises the margin
    assert float(margin_loss(actor, [], 45.0)) == 0.0


def test_the_mismatch_weights_the_teacher_crossover_and_reads_gain_and_phase():
    f = np.geomspace(10.0, 24e3, 35)
    T = 1e3 / (1j * f)  # |T| = 1 at 1 kHz
    w = crossover_weights(T, f, boost=4.0)
    assert w.mean() == pytest.approx(1.0) and f[np.argmax(w)] == pytest.approx(1e3, rel=0.13)
    assert w.max() / w.min() == pytest.approx(5.0, rel=0.05)  # 1 + boost at the crossover, ~1 far off it
    assert np.allclose(crossover_weights(T, f, 0.0), 1.0)
    assert np.allclose(crossover_weights(0.5 / (1j * f / 1e3 + 1), f, 4.0), 1.0)  # |T| < 1 everywhere: no crossover
    Tt = torch.from_numpy(T)
    gain, phase = Tt * np.e ** 0.1, Tt * np.exp(1j * 0.2)  # 0.1 Np of gain error, 0.2 rad of phase error
    assert float(mismatch(Tt, Tt)) == pytest.approx(0.0, abs=1e-15)
    assert float(mismatch(gain, Tt)) == pytest.approx(0.01) and float(mismatch(phase, Tt)) == pytest.approx(0.04)
    near = torch.from_numpy(np.where(np.abs(np.log2(f / 1e3)) < 1, 1.2, 1.0) * T)  # a gain error near crossover only
    far = torch.from_numpy(np.where(np.log2(f / 1e3) > 3, 1.2, 1.0) * T)  # the same error far above it
    weights = torch.from_numpy(w)
    assert float(mismatch(near, Tt, weights)) > 2 * float(mismatch(near, Tt))
    assert float(mismatch(far, Tt, weights)) < float(mismatch(far, Tt))


def test_the_signoff_learner_fits_mse_and_the_loop_gain_term_together():
    torch.manual_seed(0)
    actor = seed_actor()
    learner = SignoffImitation(actor, TINY, lr=1e-3, epochs=30, seed=2)
    from tests.test_train import FakeRunner
    eps = FakeRunner()("gym1", actor, [EpisodeParams(vin=200.0 + i, vref=100.0, ro=20.0, Lo=50e-6, steps=64)
                                       for i in range(3)], None)
    first = learner.update(eps)
    for _ in range(5):
        last = learner.update(eps)
    assert np.isfinite(first) and last < first
    assert learner.last_terms["loop_gain_points"] == 1 and learner.last_terms["loop_gain"] > 0
    assert len(learner.buffer) == TINY.replay


def test_the_cross_entropy_fit_is_zero_at_the_labels_and_pushes_a_small_duty_as_hard_as_a_middle_one():
    torch.manual_seed(0)
    actor = seed_actor()
    x = torch.rand(64, 19)
    with torch.no_grad():
        out = actor(x)
    fit, mse = fit_loss(actor, x, out, "bce")
    assert abs(float(fit.detach())) < 1e-6 and float(mse) == 0.0  # the label's own entropy taken off: 0 at a perfect fit
    labels = torch.rand(64, 1)
    labels[:8], labels[8:16] = 0.0, 1.0  # a teacher at its rails: a finite loss all the same
    fit_m, mse_m = fit_loss(actor, x, labels, "mse")
    assert float(fit_m.detach()) == float(mse_m.detach()) == pytest.approx(float(((out - labels) ** 2).mean()), rel=1e-6)
    fit_b, mse_b = fit_loss(actor, x, labels, "bce")
    assert torch.isfinite(fit_b) and float(fit_b.detach()) > 0
    assert float(mse_b) == pytest.approx(float(mse_m.detach()), rel=1e-6)  # the log reports the MSE either way
    # the gradient on the logit: (duty - label) / N with "bce", that times the sigmoid's slope 2 duty (1 - duty) with "mse"
    logit = actor[:-1](x).detach().requires_grad_(True)
    head = nn.Sequential(nn.Identity(), nn.Sigmoid())
    head[0] = _Fixed(logit)
    for kind, expect in (("bce", (out - labels) / 64), ("mse", 2 * (out - labels) * out * (1 - out) / 64)):
        logit.grad = None
        fit_loss(head, x, labels, kind)[0].backward()
        assert torch.allclose(logit.grad, expect, atol=1e-6)
    # a network without a sigmoid at its end: the cross-entropy of its output kept inside (0, 1)
    plain = nn.Sequential(nn.Linear(19, 1), nn.Hardtanh(0.0, 1.0))
    fit_p, _ = fit_loss(plain, x, labels, "bce")
    assert torch.isfinite(fit_p) and float(fit_p.detach()) > 0


def test_dropping_rail_rows_takes_out_only_the_network_driven_rows_whose_teacher_is_at_a_rail():
    from buckbi.contract import Episode
    y = np.array([0.0, 0.2, 1.0, 0.5, 0.9995, 0.0005])
    ep = lambda gym: Episode(gym=gym, params=None, x=np.zeros((6, 19)), y=y, pred=y, rows=None, elapsed_s=0.0)  # noqa: E731
    assert list(rail_rows_kept(ep("gym2"), "drop")) == [False, True, False, True, False, False]
    assert rail_rows_kept(ep("gym1"), "drop").all() and rail_rows_kept(ep("gym2"), "keep").all()
    with pytest.raises(RecipeError, match="dagger_rails is 'keep' or 'drop'"):
        ablation("signoff", dagger_rails="some")


def test_the_relative_fit_weighs_a_row_by_its_inverse_duty_squared_and_leaves_the_mean_at_one():
    x = torch.zeros(3, 19)
    x[:, 15] = torch.tensor([1.0, 1.0, 0.6])  # vin / vmax
    x[:, 16] = torch.tensor([0.1, 0.4, 0.001])  # vref / vmax: duties 0.1, 0.4 and 0.0017 (kept at 0.02)
    w = relative_weights(x, 2.0).ravel()
    assert float(w.mean()) == pytest.approx(1.0) and float(w[0] / w[1]) == pytest.approx(16.0)
    assert float(w[2] / w[0]) == pytest.approx(25.0) and relative_weights(x, 0.0) is None
    torch.manual_seed(0)
    actor = seed_actor()
    inputs, labels = torch.rand(3, 19), torch.rand(3, 1)
    inputs[:, 15:17] = x[:, 15:17]
    with torch.no_grad():
        err = (actor(inputs) - labels) ** 2
    fit, mse = fit_loss(actor, inputs, labels, "mse", relative_weights(inputs, 2.0))
    assert float(fit.detach()) == pytest.approx(float((w.reshape(-1, 1) * err).mean()), rel=1e-5)
    assert float(mse.detach()) == pytest.approx(float(err.mean()), rel=1e-5)


def _episode_of(x: np.ndarray, y: np.ndarray):
    from buckbi.contract import Episode
    return Episode(gym="gym1", params=None, x=x, y=y, pred=y, rows=None, elapsed_s=0.0)


def test_history_noise_has_the_rms_asked_for_on_the_applied_duties_only_and_keeps_nnin18_their_difference():
    x = torch.rand(20000, 19)
    x[:, 17] = x[:, 10] - x[:, 11]
    assert noisy_history(x, 0.0, torch.Generator()) is x
    y = noisy_history(x, 0.03, torch.Generator().manual_seed(1))
    moved = (y - x).std(dim=0)
    np.testing.assert_allclose(moved[10:15].numpy(), 0.03, rtol=0.03)  # 20,000 draws: within 3 % of the rms asked
    assert float(moved[[*range(10), 15, 16, 18]].abs().max()) == 0.0  # Vo, e, vin, ref, the accumulator untouched
    assert torch.equal(y[:, 17], y[:, 10] - y[:, 11])


def test_history_noise_moves_a_copycats_integral_action_from_its_duty_history_to_the_accumulator():
    # the teacher's duty is a function of the accumulator (NNin19); on rows where it drove, its past duties copy the
    # label: a linear fit on clean rows splits between the two, one on history-noised rows leaves the history alone
    rng = np.random.default_rng(3)
    acc = rng.uniform(-1, 1, 4000)
    label = 0.5 + 0.2 * acc
    x = np.zeros((4000, 19), np.float32)
    x[:, 18] = acc
    x[:, 10:15] = (label + rng.normal(0, 1e-3, (5, 4000))).T  # the duties the teacher applied: the label, lagged
    x[:, 17] = x[:, 10] - x[:, 11]
    history_weight = {}
    for rms in (0.0, 0.05):
        recipe = ablation("signoff", name=f"hn{rms}", epochs=3000, minibatch=0, loop_gain_weight=0.0, average=0.0,
                          lr=1e-2, lr_final=None, history_noise=rms)
        torch.manual_seed(0)
        actor = nn.Sequential(nn.Linear(19, 1))
        SignoffImitation(actor, recipe, lr=1e-2, epochs=3000, seed=1).update([_episode_of(x, label.astype(np.float32))])
        w = actor[0].weight.detach().numpy().ravel()
        history_weight[rms] = float(w[10:15].sum())
        with torch.no_grad():
            fit = float(((actor(torch.from_numpy(x)).numpy().ravel() - label) ** 2).mean())
        assert fit < 1e-3, rms  # both fit the clean rows
    # measured: 0.69 clean, 0.26 noised after 3000 steps (the ridge pull is slow along the collinear valley)
    assert history_weight[0.0] > 0.5  # the clean fit leans on the copied duties
    assert abs(history_weight[0.05]) < 0.5 * history_weight[0.0]


def test_the_accumulator_gain_is_the_type_iii_integrators_over_one_control_period():
    from buckbi.converters.buck.spec import accumulator_gain
    t = EpisodeParams(vin=200.0, ro=10.0, Lo=50e-6, vref=100.0)
    # teacher.inc's parts from its .params: R2 = 100k, C3, C1c = C3 / g, R1c, C2c; the inverting stage at 1 mHz
    R2 = 100e3
    C3 = 1 / (2 * np.pi * R2 * t.fz1)
    C1c = C3 / t.g
    R1c = 1 / (2 * np.pi * C1c * t.fz2)
    R3 = 1 / (2 * np.pi * C3 * t.fp1)
    C2c = 1 / (2 * np.pi * R1c * t.fp2)
    s = 2j * np.pi * 1e-3
    z_in = 1 / (1 / R2 + 1 / (R3 + 1 / (s * C3)))
    z_f = 1 / (1 / (R1c + 1 / (s * C1c)) + s * C2c)
    per_second = abs(s * z_f / z_in)  # duty per second of (ref - Vo)/vmax
    gain = accumulator_gain(t.g, t.fz1, t.fz2, t.fp2, t.fsw)
    assert gain == pytest.approx(-per_second / t.fsw, rel=1e-6)
    assert gain == pytest.approx(-0.1226, abs=1e-4)  # the reference's g = 5, fz1 = 200 Hz, fz2 = 1 kHz, fp2 = 40 kHz


def test_the_accumulator_shift_moves_nnin19_and_the_label_together_and_leaves_rail_rows_alone():
    x = torch.rand(20000, 19)
    y = torch.rand(20000, 1) * 0.8 + 0.1
    y[:5] = 0.0  # the teacher at its lower rail
    gain = torch.full((20000,), -0.1226)
    assert shifted_accumulator(x, y, gain, 0.0, torch.Generator()) == (x, y)
    xs, ys = shifted_accumulator(x, y, gain, 0.05, torch.Generator().manual_seed(2))
    dy = (ys - y).reshape(-1)
    inside = (ys > 0) & (ys < 1)
    assert float(dy[5:].std()) == pytest.approx(0.05, rel=0.05)
    np.testing.assert_allclose((xs[:, 18] - x[:, 18])[inside.reshape(-1)].numpy(),
                               (dy / gain)[inside.reshape(-1)].numpy(), rtol=1e-4, atol=1e-5)
    assert torch.equal(xs[:, :18], x[:, :18]) and torch.equal(ys[:5], y[:5]) and torch.equal(xs[:5], x[:5])


def test_the_applied_label_is_the_duty_the_pwm_hold_took_after_each_teacher_driven_row():
    from buckbi.contract import Episode
    x = np.random.default_rng(0).uniform(size=(6, 19))
    y = np.linspace(0.1, 0.6, 6)
    teacher = Episode(gym="gym1", params=None, x=x, y=y, pred=y * 2, rows=None, elapsed_s=0.0)
    assert labelled(teacher, "clock") is teacher
    a = labelled(teacher, "applied")
    np.testing.assert_array_equal(a.y, x[1:, 10])  # the next row's NNin11
    np.testing.assert_array_equal(a.x, x[:-1]) and np.testing.assert_array_equal(a.pred, y[:-1] * 2)
    held = np.linspace(0.2, 0.7, 6)
    network = Episode(gym="gym2", params=None, x=x, y=y, pred=y, rows=pd.DataFrame({"V(tduty)": held}), elapsed_s=0.0)
    np.testing.assert_array_equal(labelled(network, "applied").y, held[1:])  # what the teacher would have applied
    with pytest.raises(ValueError, match="V\\(tduty\\)"):
        labelled(replace(network, rows=None), "applied")


def _clock_and_applied(simulator, tmp_path) -> tuple[float, float]:
    p = EpisodeParams(vin=250.0, vref=60.0, ro=10.0, Lo=50e-6, steps=600)
    e = run_episode("gym1", seed_actor(), p, tmp_path, simulator)
    return float(e.y[-2]), float(labelled(e, "applied").y[-2])


def test_the_clock_label_is_not_the_duty_the_teacher_applies_where_its_output_ripples(tmp_path):
    # measured: at vin 250 V / vref 60 V / 10 Ohm the teacher's nnpwm on ctrlclk is 0.105 in steady state, the duty the
    # PWM hold takes from it 0.240 (Vo / vin plus the losses); "applied" labels the latter
    clock, applied = _clock_and_applied("pwl", tmp_path)
    assert applied - clock > 0.1
    assert applied == pytest.approx(60.0 / 250.0, abs=0.01)


@pytest.mark.ltspice
def test_the_clock_label_is_off_the_applied_duty_in_ngspice_too(simulator, tmp_path):
    clock, applied = _clock_and_applied(simulator, tmp_path)
    assert applied - clock > 0.1  # measured 0.105 and 0.240, as on the fast engine
    assert applied == pytest.approx(60.0 / 250.0, abs=0.01)


@pytest.mark.ltspice
def test_the_teachers_held_command_in_a_network_driven_episode_agrees_between_the_engines(simulator, tmp_path):
    p = EpisodeParams(vin=250.0, vref=60.0, ro=10.0, Lo=50e-6, steps=600)
    # a network that regulates (the seed's draws drift to a rail, where the engines part)
    actor, _ = load_checkpoint(Path(buckbi.__file__).parent / "data" / "pretrained_actor.pth")
    fast = labelled(run_episode("gym2", actor, p, tmp_path / "f", "pwl"), "applied")
    spice = labelled(run_episode("gym2", actor, p, tmp_path / "s", simulator), "applied")
    assert np.abs(fast.y - spice.y).max() < 0.02  # measured 0.007 with the pretrained actor driving


def test_the_preconditioned_step_moves_each_input_weight_by_its_scale_times_adams_step():
    rng = np.random.default_rng(4)
    spread = np.array([0.3] * 5 + [0.01] * 5 + [0.2] * 5 + [0.1, 0.1, 0.0005, 40.0])  # Vo, e, duty, vin, vref, 18, 19
    x = (rng.normal(size=(600, 19)) * spread).astype(np.float32)
    y = rng.uniform(0.05, 0.9, 600).astype(np.float32)
    steps = input_steps(torch.from_numpy(x)).numpy()
    typical = np.median(x.std(axis=0))
    np.testing.assert_allclose(steps, typical / x.std(axis=0), rtol=1e-4)  # median spread over each input's own
    assert steps[18] < 0.01 < 10 < steps[5]
    plain_r = ablation("signoff", name="plain", epochs=1, minibatch=0, loop_gain_weight=0.0, average=0.0)
    pre_r = replace(plain_r, name="pre", precondition="inputs")
    torch.manual_seed(0)
    actor = seed_actor()
    plain, pre = copy.deepcopy(actor), copy.deepcopy(actor)
    w0 = actor[0].weight.detach().clone()
    SignoffImitation(plain, plain_r, lr=1e-3, epochs=1).update([_episode_of(x, y)])
    learner = SignoffImitation(pre, pre_r, lr=1e-3, epochs=1)
    learner.scale_init = False  # the same start as the plain one: only the step differs
    learner.update([_episode_of(x, y)])
    d_plain, d_pre = (plain[0].weight - w0).detach(), (pre[0].weight - w0).detach()
    # Adam's first step is lr x sign(gradient) per weight, whatever the gradient's scale: the column's scale times it
    np.testing.assert_allclose(d_pre.numpy(), (d_plain * torch.from_numpy(steps)).numpy(), rtol=1e-3, atol=1e-9)
    assert torch.equal(plain[2].weight, pre[2].weight)  # the deeper layers step as plain Adam does
    torch.manual_seed(0)
    fresh = seed_actor()
    SignoffImitation(fresh, replace(pre_r, lr=1e-12), lr=1e-12, epochs=1).update([_episode_of(x, y)])
    np.testing.assert_allclose(fresh[0].weight.detach().numpy(), (w0 * torch.from_numpy(steps)).numpy(), rtol=1e-5,
                               atol=1e-7)  # a fresh network starts as one drawn for standardised inputs
    with pytest.raises(RecipeError, match="precondition is 'off' or 'inputs'"):
        ablation("signoff", precondition="adam")


class _Fixed(nn.Module):
    """A module that returns a given tensor whatever it is fed (a logit to differentiate against)."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


def test_a_clamp_output_starts_as_the_seeds_draws_through_a_hard_sigmoid_and_is_linear_down_to_small_duties(tmp_path):
    torch.manual_seed(5)
    seed = seed_actor().double()
    torch.manual_seed(5)
    clamp = fresh_actor("clamp").double()
    x = torch.rand(256, 19, dtype=torch.float64) * torch.tensor([0.6] * 15 + [1.0, 0.6, 0.2, 40.0], dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(clamp(x), nn.functional.hardsigmoid(seed[:-1](x)), atol=1e-12)
        out = clamp[:-1](x)  # the limiter's input: its output wherever it lies in 0..1
        inside = (out > 0) & (out < 1)
        assert inside.any() and torch.equal(clamp(x)[inside], out[inside])
    # the slope of the duty in the last layer's bias: 1 at a duty of 0.05 (a sigmoid's: 0.05 x 0.95)
    b = clamp[-2].bias
    with torch.no_grad():
        b.copy_(b - clamp(x[:1]).squeeze() + 0.05)
    d = clamp(x[:1]).squeeze()
    (grad,) = torch.autograd.grad(d, b)
    assert d.item() == pytest.approx(0.05) and grad.item() == pytest.approx(1.0)
    with pytest.raises(CheckpointError, match="unknown output 'tanh'; choose one of sigmoid, clamp"):
        fresh_actor("tanh")
    with pytest.raises(RecipeError, match="output is 'sigmoid' or 'clamp'"):
        ablation("signoff", output="linear")
    # a run with it trains, saves and resumes the limiter (the exporter and both engines take Hardtanh)
    train(TrainConfig(workdir=tmp_path / "clamp", recipe=replace(TINY, output="clamp"), simulator="pwl", seed=11,
                      progress=False, spice_check_every=0, episodes=4))
    actor, _ = load_checkpoint(tmp_path / "clamp" / "actor_final.pth")
    assert isinstance(actor[-1], nn.Hardtanh) and (actor[-1].min_val, actor[-1].max_val) == (0.0, 1.0)


def test_a_leaky_hidden_layer_keeps_the_seeds_draws_and_a_gradient_below_zero(tmp_path):
    torch.manual_seed(5)
    seed = seed_actor().double()
    torch.manual_seed(5)
    leaky = fresh_actor("sigmoid", "leaky_relu").double()
    assert [type(m) for m in leaky] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU, nn.Linear, nn.Sigmoid]
    for a, b in zip(seed.parameters(), leaky.parameters()):
        assert torch.equal(a, b)
    # a first-layer unit whose input lies below zero everywhere: dead under ReLU, 0.01 of the slope under LeakyReLU
    x = torch.rand(64, 19, dtype=torch.float64)
    for net in (seed, leaky):
        with torch.no_grad():
            net[0].bias[0] = -1e3
    g_relu = torch.autograd.grad(seed(x).sum(), seed[0].weight)[0][0]
    g_leaky = torch.autograd.grad(leaky(x).sum(), leaky[0].weight)[0][0]
    assert torch.all(g_relu == 0) and torch.any(g_leaky != 0)
    with pytest.raises(CheckpointError, match="unknown hidden activation 'gelu'; choose one of relu, leaky_relu"):
        fresh_actor("sigmoid", "gelu")
    with pytest.raises(RecipeError, match="hidden is 'relu' or 'leaky_relu'"):
        ablation("signoff", hidden="tanh")
    train(TrainConfig(workdir=tmp_path / "leaky", recipe=replace(TINY, hidden="leaky_relu"), simulator="pwl", seed=11,
                      progress=False, spice_check_every=0, episodes=4))
    actor, _ = load_checkpoint(tmp_path / "leaky" / "actor_final.pth")
    assert isinstance(actor[1], nn.LeakyReLU) and actor[1].negative_slope == 0.01


def _tiny(tmp_path, name: str, **kw) -> TrainConfig:
    return TrainConfig(workdir=tmp_path / name, recipe=TINY, simulator="pwl", seed=11, progress=False,
                       spice_check_every=0, **kw)


def test_same_seed_same_network_and_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    whole = train(_tiny(tmp_path, "a"))
    again = train(_tiny(tmp_path, "b"))
    assert (whole["status"] == "ok").all() and len(whole) == TINY.episodes
    assert set(whole["scenario"]) > {"startup"} and "gym2" in set(whole["gym"])
    a, _ = load_checkpoint(tmp_path / "a" / "actor_final.pth")
    b, _ = load_checkpoint(tmp_path / "b" / "actor_final.pth")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    train(_tiny(tmp_path, "c", episodes=8))  # stopped after two of three batches
    resumed = train(_tiny(tmp_path, "c"))  # a new process would build this Trainer from the checkpoint
    c, meta = load_checkpoint(tmp_path / "c" / "actor_final.pth")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    assert meta["recipe"] == "tiny" and list(resumed["loss_actor"]) == list(whole["loss_actor"])
    # the model selection too: the same network kept, scored alike, after a resume
    sa, ma = load_checkpoint(tmp_path / "a" / "actor_selected.pth")
    sc, mc = load_checkpoint(tmp_path / "c" / "actor_selected.pth")
    assert ma["score"] == mc["score"] and ma["episode"] == mc["episode"] in (8, 12)
    assert all(torch.equal(x, y) for x, y in zip(sa.state_dict().values(), sc.state_dict().values()))
    scores = pd.read_csv(tmp_path / "a" / "selection.csv")
    assert list(scores["episode"]) == [8, 12] and ma["score"] == scores["score"].min()
    # made again from the run's checkpoints (the networks leaving episodes 8 and 12): what the run kept
    from buckbi.train.selection import replay_selection
    again = replay_selection(tmp_path / "a", TINY, 11, tmp_path / "replayed")
    sr, mr = load_checkpoint(tmp_path / "replayed" / "actor_selected.pth")
    assert list(again["score"]) == list(scores["score"]) and (mr["episode"], mr["score"]) == (ma["episode"], ma["score"])
    assert all(torch.equal(x, y) for x, y in zip(sa.state_dict().values(), sr.state_dict().values()))
    replay_selection(tmp_path / "c", TINY, 11)  # in the run's own folder: its selection kept beside the new one
    assert (tmp_path / "c" / "actor_selected.pth.before-replay").exists()
    assert pd.read_csv(tmp_path / "c" / "selection.csv.before-replay").equals(pd.read_csv(tmp_path / "c" / "selection.csv"))
    first = (tmp_path / "c" / "actor_selected.pth.before-replay").read_bytes()
    (tmp_path / "c" / "actor_selected.pth").write_bytes(b"a replay's result")
    replay_selection(tmp_path / "c", TINY, 11)  # a second replay: the run's own selection stays the kept one
    assert (tmp_path / "c" / "actor_selected.pth.before-replay").read_bytes() == first
    # a run missing a checkpoint the selection needs: refused, naming it, before anything is moved
    shutil.copytree(tmp_path / "a", tmp_path / "d")
    (tmp_path / "d" / "actor_ep9.pth").unlink()
    with pytest.raises(FileNotFoundError, match=r"leaving episode\(s\) 8 "):
        replay_selection(tmp_path / "d", TINY, 11)
    assert (tmp_path / "d" / "actor_selected.pth").exists() and not list((tmp_path / "d").glob("*.before-replay"))


def test_a_run_of_one_recipe_is_not_resumed_with_another(tmp_path):
    train(_tiny(tmp_path, "a", episodes=4))
    with pytest.raises(ValueError, match="--recipe tiny, or add --fresh"):
        Trainer(TrainConfig(workdir=tmp_path / "a", recipe="seed", simulator="pwl", progress=False))
    assert len(list((tmp_path / "a").glob("actor_ep*.pth"))) == 4  # nothing lost


def test_every_recipe_has_a_description_and_the_cli_lists_them():
    from buckbi.cli import build_parser
    text = build_parser().parse_args(["train"]).recipe
    assert text == "signoff"
    for r in RECIPES.values():
        assert r.description and r.name in ("seed", "signoff")


def test_set_changes_one_ingredient_and_names_the_run_after_it():
    from buckbi.train.recipes import with_settings
    r = with_settings("signoff", ["loop_gain_weight=0", "excitation_mV=[0, 50]", "box={'ro': [5, 80, 'uniform']}"])
    assert r.loop_gain_weight == 0.0 and r.excitation_mV == (0, 50) and r.box == {"ro": (5, 80, "uniform")}
    assert r.name == "signoff+loop_gain_weight=0,excitation_mV=[0,50],box={'ro':[5,80,'uniform']}"
    assert with_settings("seed", []) is get_recipe("seed")
    assert with_settings("signoff", ["select_by=closeness"]).select_by == "closeness"  # a bare word for a text setting
    for bad, message in [("select_by=lines", "'closeness' or 'plan'"), ("loop_gain=1", "NAME one of"), ("excitation_mV=5", "a list"), ("lr=fast", "literal"),
                         ("dagger_share=2", "dagger_share"), ("epochs=True", "a number")]:
        with pytest.raises(RecipeError, match=message):
            with_settings("signoff", [bad])


def test_a_deployment_recipe_trains_with_the_delay_and_the_adc_in_the_gym(tmp_path):
    from dataclasses import replace
    deployed = replace(TINY, name="tiny-deployed", delay_periods=1, adc_bits=10)
    plan = deployed.plan(2, 9)
    assert (plan.params.delay_periods, plan.params.adc_bits) == (1, 10)
    log = train(TrainConfig(workdir=tmp_path / "d", recipe=deployed, simulator="pwl", seed=3, progress=False,
                            spice_check_every=0, episodes=8))
    assert (log["status"] == "ok").all() and "gym2" in set(log["gym"])
    # the loop-gain term compares the network behind its delay with the teacher without one
    target = LoopGainTarget(seed_actor(), plan.params, deployed.frequencies())
    assert target.fixed.loop.delay == 1 and target.params.adc_bits == 0


def test_a_schedule_is_refused_for_a_recipe_that_draws_its_gyms(tmp_path):
    with pytest.raises(ValueError, match="dagger_share"):
        Trainer(TrainConfig(workdir=tmp_path / "g", recipe="signoff", schedule="gym1:10", simulator="pwl"))
    assert not (tmp_path / "g").exists()  # nothing written


def test_a_due_network_driven_episode_is_spice_checked_through_a_teacher_driven_one(tmp_path):
    from tests.test_train import FakeRunner
    from dataclasses import replace
    recipe = replace(TINY, dagger_after=0, dagger_share=0.5)
    t = Trainer(TrainConfig(workdir=tmp_path / "g", recipe=recipe, simulator="pwl", seed=11, progress=False,
                            spice_check_every=4))
    batch = list(range(1, 13))
    eps = FakeRunner()("gym1", seed_actor(), [t.params_for(ep) for ep in batch], None)
    found = dict(zip(batch, eps))
    gyms = {ep: t.gym_for(ep) for ep in batch}
    only = t.checked_episodes(batch, found)
    # due: 4 (gym 2), 8 (gym 1), 12 (gym 2); the batch's last teacher-driven episode is 11
    assert [gyms[ep] for ep in (4, 8, 11, 12)] == ["gym2", "gym1", "gym1", "gym2"]
    assert only == {8, 11}


def test_the_plan_selection_runs_the_default_plans_tests_at_the_validation_points_not_its_corners():
    from buckbi.testplan.plan import load_plan
    from buckbi.train.selection import validation_cells, validation_points
    with pytest.raises(RecipeError, match="select_by"):
        ablation("signoff", select_by="lines")
    recipe = ablation("signoff", select_by="plan", select_points=4)
    points, _ = validation_points(recipe, 1)
    cells = validation_cells(recipe, points)
    names = {t.name for t, _ in cells}
    assert names == {"startup", "loadstep", "linestep-up", "linestep-down", "refstep", "loopgain"}  # no MC, no long run
    plan_corners = {(c.vin, c.vref) for c in load_plan("default").corners.values()}
    assert all((c.vin, c.vref) not in plan_corners and (c.vin, c.vref, c.ro) in
               {(p.vin, p.vref, p.ro) for p in points} for _, c in cells)
    up = [c for t, c in cells if t.name == "linestep-up"]
    assert all(c.vin * 1.2 <= 250 for c in up) and len(up) == sum(p.vin * 1.2 <= 250 for p in points)
    assert sum(t.name == "startup" for t, _ in cells) == 4


def test_the_plan_selection_scores_the_seeds_network_below_the_signoff_one(tmp_path):
    """The plan score on real runs at seed 1's first 3 validation points (16 lines, the teacher passes 13): the seed's
    network overshoots the reference step (57 % of the step, limit 50) and has 13 degrees of phase margin at the
    third (vin 166 V, vref 131 V, 36 Ohm), where the shipped signoff network passes both; both miss the line step down
    there (vin to 132 V, next to dropout: deviation 12-16 %, limit 6; the teacher's within it)."""
    from buckbi.nn.actors import resolve_actor
    from buckbi.testplan.cells import run_cell
    from buckbi.testplan.report import missed_limits
    from buckbi.train.selection import Selection
    sel = Selection(ablation("signoff", select_points=3), 1, tmp_path)
    assert sel.recipe.select_by == "plan" and sel.scored_by.startswith("the default plan's tests")
    seed, shipped = resolve_actor("seed-pretrained"), resolve_actor("pretrained")
    seed_misses, shipped_misses = sel.plan_misses(seed), sel.plan_misses(shipped)
    assert (len(sel.cells), sum(sel.teacher_passes)) == (16, 13)
    assert seed_misses >= 3 and shipped_misses <= 1, (seed_misses, shipped_misses)
    def misses(actor, test, corner) -> list[str]:
        r = run_cell(actor, test, corner, "nn", "pwl")
        return missed_limits(test, "nn", r["figures"], r["error"])

    third = {t.name: (t, c) for t, c in sel.cells if c.name == "val3"}
    for name in ("refstep", "loopgain"):
        assert misses(seed, *third[name]) and not misses(shipped, *third[name]), name
    assert shipped_misses <= sel.score(shipped) < shipped_misses + 1  # the closeness tie-break: below one line


def test_the_raised_target_gives_the_teacher_margin_where_light_load_takes_it_away():
    from buckbi.loopgain.margins import margins
    from buckbi.loopgain.pop import loop_gain
    from buckbi.nn.actors import resolve_actor
    from buckbi.train.targets import GAIN_STEPS, raised_gain
    f = np.geomspace(2.5, 25e3, 160)
    light = EpisodeParams(vin=150.0, vref=140.0, ro=750.0, Lo=50e-6)  # the default plan's vin150-vref140-light
    T = loop_gain("teacher", None, light, f).T
    assert margins(f, T).phase_margin_deg == pytest.approx(35.8, abs=0.3)  # the teacher's own, measured
    k = raised_gain(f, T, 45.0)
    assert margins(f, k * T).phase_margin_deg >= 45.0 > margins(f, k / GAIN_STEPS[1] * T).phase_margin_deg
    assert 4.0 < k < 16.0 and margins(f, k * T).crossover_Hz > 2 * margins(f, T).crossover_Hz  # up into the zeros
    ccm = EpisodeParams(vin=200.0, vref=100.0, ro=20.0, Lo=50e-6)  # 75+ degrees already: the teacher's own
    assert raised_gain(f, loop_gain("teacher", None, ccm, f).T, 45.0) == 1.0
    assert raised_gain(f, 0.5 / (1 + 1j * f), 45.0) == 1.0  # no crossover: nothing to raise
    # the learner's target is the raised one at such a point, the teacher's own elsewhere
    actor = resolve_actor("pretrained")
    band = SIGNOFF.frequencies()
    raised = LoopGainTarget(actor, light, band, target_margin_deg=45.0)
    own = LoopGainTarget(actor, light, band)
    assert raised.gain == pytest.approx(k) and own.gain == 1.0
    assert np.allclose(raised.T_teacher.numpy(), k * own.T_teacher.numpy())
    assert LoopGainTarget(actor, ccm, band, target_margin_deg=45.0).gain == 1.0


def test_the_ratio_axis_draws_the_conversion_ratio_uniformly_inside_the_ranges():
    from buckbi.converters.buck.converter import EXAMPLES
    from buckbi.converters.buck.design import load_converter
    recipe = replace(get_recipe("signoff"), box={"ratio": (0.2, 0.97, "uniform")}, holdout=(), parts_tolerance={})
    rng = np.random.default_rng(0)
    points = [p for p in (recipe.point(rng, 2048) for _ in range(4000)) if p is not None]
    assert len(points) == 4000  # every ratio of 0.2..0.97 has room for vin in 150..250 V with vref in 50..150 V
    ratio = np.array([p.vref / p.vin for p in points])
    vin, vref = np.array([p.vin for p in points]), np.array([p.vref for p in points])
    assert ratio.min() >= 0.2 and ratio.max() <= 0.97
    assert vin.min() >= 150 and vin.max() <= 250 and vref.min() >= 50 - 1e-9 and vref.max() <= 150 + 1e-9
    assert (ratio > 0.85).mean() == pytest.approx(0.12 / 0.77, abs=0.02)  # uniform: 15.6 % above 0.85
    plain = replace(recipe, box={})  # uniform in vin and vref: 2-3 %
    rng = np.random.default_rng(0)
    plain_ratio = np.array([p.vref / p.vin for p in (plain.point(rng, 2048) for _ in range(4000)) if p is not None])
    assert (plain_ratio > 0.85).mean() < 0.04
    other = recipe.for_converter(load_converter(EXAMPLES["buck-48v"]))  # a ratio is a ratio on any buck
    assert other.box["ratio"] == (0.2, 0.97, "uniform")


def test_a_bad_training_box_is_refused_naming_the_axis_and_the_form():
    from buckbi.train.recipes import with_settings
    for box, words in (("{'ratio': (0.2, 1.5, 'uniform')}", "inside (0, 1)"),
                       ("{'vin': (300, 150, 'uniform')}", "low < high"),
                       ("{'ro': (0.0, 100.0, 'log')}", "low > 0 for a log draw"),
                       ("{'vin': (150, 250, 'cubic')}", "'uniform' or 'log'"),
                       ("{'vout': (3, 4, 'log')}", "no axis 'vout'")):
        with pytest.raises(RecipeError, match="box") as err:
            with_settings("signoff", [f"box={box}"])
        assert words in str(err.value)
    ok = with_settings("signoff", ["box={'ro': (5.0, 1000.0, 'log'), 'vref': (50.0, 150.0, 'log')}"])  # README's
    assert ok.box["vref"] == (50.0, 150.0, "log")


def test_edge_validation_points_lie_on_the_boxs_faces_and_leave_the_plain_draw_as_it_was():
    from buckbi.train.selection import validation_points
    plain = get_recipe("signoff")
    before = [(p.vin, p.vref, p.ro) for p in validation_points(plain, 1)[0]]
    assert before[0] == pytest.approx((236.937, 142.180, 181.499), abs=1e-3)  # seed 1's first point, as every run drew it
    for box in ({}, {"ro": (5.0, 1000.0, "log"), "ratio": (0.2, 0.97, "uniform")}):
        recipe = ablation("signoff", select_edges=0.5, select_points=40, **({"box": box} if box else {}))
        points = validation_points(recipe, 3)[0]
        faces = [p for p in points[:20] if p.vin in (150.0, 250.0) or p.vref in (50.0, 150.0)]
        assert len(faces) == 20, [(p.vin, p.vref) for p in points[:20]]
        assert {p.vin for p in faces} & {150.0, 250.0} and {p.vref for p in faces} & {50.0, 150.0}  # both axes, ends
        inside = [p for p in points[20:] if p.vin not in (150.0, 250.0) and p.vref not in (50.0, 150.0)]
        assert len(inside) == 20
        assert all(150 <= p.vin <= 250 and 50 <= p.vref <= 150 and p.vref < p.vin for p in points)
        assert not any(abs(p.vin - v) < 5 and abs(p.vref - r) < 5 for p in points for v, r in recipe.holdout)
        if box:  # the drawn ratio kept: the pinned axis moves the other along it
            assert all(0.2 <= p.vref / p.vin <= 0.97 for p in points)
    assert [(p.vin, p.vref, p.ro) for p in validation_points(plain, 1)[0]] == before
    with pytest.raises(RecipeError, match="select_edges is a share"):
        ablation("signoff", select_edges=1.5)


def test_the_guard_band_counts_a_passed_line_by_how_far_it_runs_into_its_limits():
    from buckbi.testplan.plan import load_plan
    from buckbi.train.selection import guard_share
    tests = {t.name: t for t in load_plan("default").tests}
    loop, start = tests["loopgain"], tests["startup"]  # phase margin >= 45, gain margin >= 2.5; settle <= 5 ms ...
    assert guard_share(loop, {"phase_margin_deg": 47.5, "gain_margin_dB": 10.0}, 0.0) == 0.0  # off
    # 45 / 47.5 = 0.947 of the limit used: (0.947 - 0.8) / 0.2 = 0.74 of a miss
    assert guard_share(loop, {"phase_margin_deg": 47.5, "gain_margin_dB": 10.0}, 0.2) == pytest.approx(
        (45 / 47.5 - 0.8) / 0.2)
    assert guard_share(loop, {"phase_margin_deg": 90.0, "gain_margin_dB": math.inf}, 0.2) == 0.0  # far inside
    assert guard_share(loop, {"phase_margin_deg": 90.0, "gain_margin_dB": 2.9}, 0.2) == pytest.approx(
        (2.5 / 2.9 - 0.8) / 0.2)  # the limit run closest decides
    assert guard_share(start, {"overshoot_pct": 0.0, "settle_ms": 4.5, "dc_error_pct": 0.1, "ripple_pct": 0.5},
                       0.2) == pytest.approx((4.5 / 5 - 0.8) / 0.2)  # an upper limit: value / limit
    assert guard_share(start, {"overshoot_pct": 0.0, "settle_ms": 3.0, "dc_error_pct": 0.1, "ripple_pct": 0.5},
                       0.2) == 0.0
    lim = next(lim for lim in loop.limits if lim.figure == "phase_margin_deg")
    assert lim.usage(-10.0) == math.inf and lim.usage(math.nan) == math.inf and lim.usage(math.inf) == 0.0
    assert ablation("signoff", select_guard=0.2).select_guard == 0.2
    with pytest.raises(RecipeError, match="select_guard is a share"):
        ablation("signoff", select_guard=1.0)


def test_restarts_train_runs_alike_to_single_ones_and_keep_the_best_at_a_draw_of_their_own(tmp_path):
    from buckbi.train.restarts import restart_seeds
    assert restart_seeds(1, 2) == [1, 2] and restart_seeds(3, 2) == [5, 6] and restart_seeds(None, 2) == [None, None]
    with pytest.raises(ValueError, match="--seed must be >= 1"):
        restart_seeds(0, 2)
    twice = replace(TINY, restarts=2)
    log = train(TrainConfig(workdir=tmp_path / "r", recipe=twice, simulator="pwl", seed=6, progress=False,
                            spice_check_every=0))
    assert set(log["restart"]) == {"restart-11", "restart-12"} and len(log) == 2 * TINY.episodes
    # each run is the run of its seed alone, weight for weight
    alone = train(_tiny(tmp_path, "alone"))  # seed 11
    a, _ = load_checkpoint(tmp_path / "alone" / "actor_final.pth")
    b, _ = load_checkpoint(tmp_path / "r" / "restart-11" / "actor_final.pth")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert list(alone["loss_actor"]) == list(log[log["restart"] == "restart-11"]["loss_actor"])
    table = pd.read_csv(tmp_path / "r" / "restarts.csv")
    assert list(table["run"]) == ["restart-11", "restart-12"] and table["kept"].sum() == 1
    kept = table[table["kept"]].iloc[0]
    assert kept["restart_score"] == table["restart_score"].min()
    net, meta = load_checkpoint(tmp_path / "r" / "actor_selected.pth")
    own, _ = load_checkpoint(tmp_path / "r" / kept["run"] / "actor_selected.pth")
    assert meta["run"] == kept["run"] and meta["restart_score"] == pytest.approx(kept["restart_score"])
    assert all(torch.equal(x, y) for x, y in zip(net.state_dict().values(), own.state_dict().values()))
    # run again: both runs are complete, the pick is made again alike
    again = train(TrainConfig(workdir=tmp_path / "r", recipe=twice, simulator="pwl", seed=6, progress=False,
                              spice_check_every=0))
    assert len(again) == len(log) and pd.read_csv(tmp_path / "r" / "restarts.csv").equals(table)
    with pytest.raises(RecipeError, match="restarts is a number of runs"):
        replace(TINY, restarts=0)
    # a folder of one layout is never resumed with the other (nothing in it overwritten)
    with pytest.raises(ValueError, match="holds a run of one"):
        train(TrainConfig(workdir=tmp_path / "alone", recipe=twice, simulator="pwl", seed=6, progress=False))
    with pytest.raises(ValueError, match="holds runs of a recipe with restarts"):
        train(_tiny(tmp_path, "r"))
