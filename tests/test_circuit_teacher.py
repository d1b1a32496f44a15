"""Proof 1 of the gyms: the portable Type-III teacher regulates the buck (real ngspice episodes)."""
from __future__ import annotations

import numpy as np
import pytest

from buckbi import EpisodeParams, run_episodes

pytestmark = pytest.mark.ltspice

STEPS = 512


def operating_points(n: int, seed: int = 2024) -> list[EpisodeParams]:
    rng = np.random.default_rng(seed)
    return [EpisodeParams.random(rng, steps=STEPS) for _ in range(n)]


def test_teacher_regulates_random_operating_points(simulator, tmp_path):
    points = operating_points(12)
    episodes = run_episodes("teacher", None, points, tmp_path, simulator, parallel=2)
    for p, ep in zip(points, episodes):
        assert not isinstance(ep, Exception), f"episode {p} did not converge: {ep}"
        rows = ep.rows
        assert len(rows) == STEPS + 1  # STEPS + 2 falling edges, the last row dropped as the seed does
        np.testing.assert_allclose(np.diff(rows["time"]), 1 / p.fsw, rtol=1e-6)
        tail = rows["V(out)"].to_numpy()[-len(rows) // 4:]
        err = np.mean(np.abs(tail - p.vref))
        assert err < 0.01 * p.vref, f"vin={p.vin:.1f} vref={p.vref:.1f}: mean |Vout-vref| = {err:.3f} V"
        assert 0.0 <= ep.y.min() and ep.y.max() <= 1.0  # the op-amp clamp
