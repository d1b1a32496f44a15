"""How far two runs of one episode are apart, on synthetic episodes (no simulator)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from buckbi.contract import Episode
from buckbi.converters.buck import EpisodeParams
from buckbi.pwl.agreement import CONVERGED, deviation, violations

P = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=8)


def episode(vout_offset=0.0, dx=None, duty_offset=0.0, time_offset=0.0) -> Episode:
    n = P.steps + 1
    t = (np.arange(n) + 1) / P.fsw + time_offset
    x = np.tile(np.linspace(0, 0.5, 19), (n, 1))
    if dx is not None:
        x = x + dx
    rows = pd.DataFrame({"time": t, "V(out)": 100.0 + vout_offset, "V(duty)": 0.5 + duty_offset})
    return Episode("gym1", P, x, np.full(n, 0.5), np.full(n, 0.4), rows, 0.0)


def test_deviation_groups_the_inputs_and_judges_them():
    dx = np.zeros((P.steps + 1, 19))
    dx[3, 0] = 2e-3  # Vout input (plant group)
    dx[5, 11] = 7e-3  # a held duty
    dx[2, 18] = 0.5  # the accumulator: reported apart
    dev = deviation(episode(), episode(vout_offset=0.2, dx=dx))
    assert dev["vout_pct_of_vin"] == pytest.approx(0.1)
    assert dev["plant_inputs"] == pytest.approx(2e-3) and dev["duty_inputs"] == pytest.approx(7e-3)
    assert dev["accumulator"] == pytest.approx(0.5) and dev["nn_out"] == 0.0
    assert violations(dev, CONVERGED) == ["vout_pct_of_vin 0.1 > 0.05", "plant_inputs 0.002 > 0.001",
                                          "duty_inputs 0.007 > 0.005", "accumulator 0.5 > 0.02"]


def test_episodes_sampled_at_other_instants_are_not_compared():
    with pytest.raises(ValueError, match="same instants"):
        deviation(episode(), episode(time_offset=1e-6))
