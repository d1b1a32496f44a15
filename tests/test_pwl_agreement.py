"""The fast simulator against ngspice on the same episodes (real ngspice runs).

Converged ngspice (max_step = T/400) is the reference: the fast simulator must be within
buckbi.pwl.agreement.CONVERGED of it at every sampled row, and closer to it than default-step ngspice is.
The full matrix (every gym, light/heavy/mid load, seeded and trained actor) is marked slow.
"""
from __future__ import annotations

import pytest
import torch

from buckbi.nn.actors import resolve_actor
from buckbi.nn.checkpoint import seed_actor
from buckbi.episodes.run import run_episode
from buckbi.pwl.agreement import reference_points, CONVERGED, DEFAULT_STEP, deviation, violations

pytestmark = pytest.mark.ltspice

T400 = 1 / 50e3 / 400
POINTS = reference_points()


def seeded_actor() -> torch.nn.Module:
    torch.manual_seed(7)
    return seed_actor().double().eval()


def agree(gym, actor, point, simulator, tmp_path, tol=CONVERGED, max_step=T400):
    fast = run_episode(gym, actor, POINTS[point], tmp_path / "fast", "pwl")
    spice = run_episode(gym, actor, POINTS[point], tmp_path / "spice", simulator, max_step=max_step)
    dev = deviation(fast, spice)
    bad = violations(dev, tol)
    assert not bad, f"{gym} at {point}: pwl vs ngspice (max step {max_step:.2g} s): {bad}; all: {dev}"
    return dev


@pytest.mark.parametrize("gym,point", [("teacher", "light"), ("gym1", "light"), ("gym1", "heavy"),
                                       ("deploy", "mid")])
def test_pwl_agrees_with_converged_ngspice(simulator, tmp_path, gym, point):
    agree(gym, None if gym == "teacher" else seeded_actor(), point, simulator, tmp_path)


def test_pwl_is_closer_to_converged_ngspice_than_default_ngspice(simulator, tmp_path):
    # Held inputs and duties: the fast simulator is closer to T/400 ngspice than T/20 ngspice is (measured
    # 1.0e-4 vs 2.3e-4 and 1.7e-3 vs 2.6e-3 here). Vout: both about 0.012 % of vin from T/400 (what the fast
    # model leaves out, ESL and the 1 pF, is of that size), well inside the converged tolerance (0.05 %).
    actor, p = seeded_actor(), POINTS["mid"]
    fast = run_episode("gym1", actor, p, tmp_path / "fast", "pwl")
    fine = run_episode("gym1", actor, p, tmp_path / "fine", simulator, max_step=T400)
    coarse = run_episode("gym1", actor, p, tmp_path / "coarse", simulator)
    pwl_dev, ngspice_dev = deviation(fast, fine), deviation(coarse, fine)
    for group in ("duty_inputs", "plant_inputs"):
        assert pwl_dev[group] < ngspice_dev[group], f"{group}: pwl {pwl_dev[group]:.2e}, ngspice {ngspice_dev[group]:.2e}"
    assert pwl_dev["vout_pct_of_vin"] <= CONVERGED.vout_pct_of_vin
    # and against default-step ngspice it stays within what default ngspice itself misses
    assert not violations(deviation(fast, coarse), DEFAULT_STEP)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("gym", ["teacher", "gym1", "gym2", "deploy"])
@pytest.mark.parametrize("which", ["seeded", "seed-pretrained"])
def test_pwl_agreement_matrix(simulator, tmp_path, gym, point, which):
    if gym == "teacher" and which == "seed-pretrained":
        pytest.skip("the teacher runs no actor")
    if which == "seeded" and gym in ("gym2", "deploy") and point == "heavy":
        # An untrained actor in the loop swings Vout by +-15 V at this point and amplifies any difference;
        # there T/400 ngspice itself is 0.031 % of vin from T/1500 (measured), so T/400 is no reference.
        pytest.skip("seeded actor in the loop at heavy load: ngspice at T/400 is not converged there")
    actor = None if gym == "teacher" else (seeded_actor() if which == "seeded" else resolve_actor("seed-pretrained"))
    agree(gym, actor, point, simulator, tmp_path)
