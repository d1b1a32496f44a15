"""The portable teacher circuit (Type-III buck) regulates in ngspice (groundwork for issue #4)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from buckbi import sample_on_clock
from buckbi.sim import SimJob, run_netlists

pytestmark = pytest.mark.ltspice

TEACHER = Path(__file__).parents[1] / "circuits" / "teacher.cir"
STEPS = 512


def operating_points(n: int, seed: int = 2024) -> list[dict[str, float]]:
    """The seed's ranges: vin 150-250 V, ro 5-80 ohm, Lo 20-100 uH, vref 50-150 V."""
    rng = np.random.default_rng(seed)
    return [{"vin": rng.uniform(150, 250), "ro": rng.uniform(5, 80), "Lo": rng.uniform(20e-6, 100e-6),
             "vref": rng.uniform(50, 150), "fsw": 50e3, "vmax": 250.0, "STEPS": STEPS} for _ in range(n)]


def test_teacher_regulates_random_operating_points(simulator, tmp_path):
    points = operating_points(12)
    jobs = [SimJob(TEACHER, params=p, traces=["V(out)", "V(ctrlclk)", "V(nnpwm)"], name=f"teacher{k}")
            for k, p in enumerate(points)]
    results = run_netlists(jobs, tmp_path, simulator=simulator, parallel=2)
    for p, res in zip(points, results):
        assert not isinstance(res, Exception), f"episode {p} failed: {res}"
        rows = sample_on_clock(res.data)
        # one row per control period: .tran runs STEPS + 2 periods, a falling edge ends each
        assert len(rows) == STEPS + 2
        np.testing.assert_allclose(np.diff(rows["time"]), 1 / p["fsw"], rtol=1e-3)
        tail = rows["V(out)"].to_numpy()[-len(rows) // 4:]
        err = np.mean(np.abs(tail - p["vref"]))
        assert err < 0.01 * p["vref"], f"vin={p['vin']:.1f} vref={p['vref']:.1f}: mean |Vout-vref| = {err:.3f} V"
        assert 0.0 <= rows["V(nnpwm)"].min() and rows["V(nnpwm)"].max() <= 1.0  # the op-amp clamp
