"""SPICE-in-the-loop checks of the actor under test (``--buckbi-actor PATH``, else a fresh seeded one).

Run on your own network: ``pytest --pyargs buckbi.checks.test_loop_checks -m ltspice --buckbi-actor gym/actor_final.pth``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from buckbi import edge_indices

pytestmark = pytest.mark.ltspice

EQUIV_TOL = 1e-6  # |NNout1 - actor(x)| at every sampled row
# A held input between two rising edges, after SETTLE grid points: a race would move it by a whole signal
# step (1e-3..1e-1); what is allowed is gear's tail (see the test), which stays below 1e-5 here.
HOLD_TOL = 1e-5
SETTLE = 3


def torch_outputs(actor, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return actor(torch.tensor(x, dtype=torch.float64)).numpy().ravel()


@pytest.mark.parametrize("gym", ["gym1", "gym2"], ids=["gym1-teacher-drives", "gym2-nn-drives"])
def test_exported_actor_equals_pytorch_in_the_closed_loop(actor, episode_runner, gym):
    ep = episode_runner(gym, actor)
    expected = torch_outputs(actor, ep.x)
    err = np.abs(ep.pred - expected)
    assert len(err) == ep.params.steps + 1
    assert err.max() <= EQUIV_TOL, f"worst |NNout1 - actor(x)| = {err.max():.2e} at row {err.argmax()}"


def test_rows_are_the_first_points_after_each_falling_edge(actor, episode_runner):
    ep = episode_runner("gym1", actor, keep_waveforms=True)
    wave, clk = ep.waveforms, ep.waveforms["V(ctrlclk)"].to_numpy()
    falls = edge_indices(clk, 0.5, "falling")
    assert np.all(clk[falls - 1] > 0.5) and np.all(clk[falls] <= 0.5)
    np.testing.assert_array_equal(ep.rows["time"].to_numpy(), wave["time"].to_numpy()[falls][:-1])
    assert len(ep.rows) == ep.params.steps + 1  # one row per control period (the seed drops the last)
    np.testing.assert_allclose(np.diff(ep.rows["time"]), 1 / ep.params.fsw, rtol=1e-9)


def test_held_inputs_are_constant_between_rising_edges(actor, episode_runner):
    # After a rising edge a hold settles: its master capacitor is isolated while its input was still moving,
    # and gear (BDF2) extrapolates that last time step (a geometric tail of about half the input's change
    # over that step; the first grid points after the edge also interpolate across it). From SETTLE grid
    # points after the edge to the next edge every held input must stay within HOLD_TOL.
    ep = episode_runner("gym1", actor, keep_waveforms=True)
    wave = ep.waveforms
    rises = edge_indices(wave["V(ctrlclk)"].to_numpy(), 0.5, "rising")
    assert np.all(np.diff(rises) == 20)  # one rising edge per period of 20 grid points
    held = wave[[f"V(nnin{i})" for i in range(1, 20) if i not in (16, 18)]].to_numpy()
    worst = max(np.ptp(held[a + SETTLE:b - 1], axis=0).max() for a, b in zip(rises[:-1], rises[1:]))
    assert worst <= HOLD_TOL, f"a held input moved by {worst:.2e} between two rising edges"
    changed = [np.abs(held[b + SETTLE] - held[b - 2]).max() for b in rises[1:-1]]
    assert max(changed) > 1e-4  # and they do move at the edges
