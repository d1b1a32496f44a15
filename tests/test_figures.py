"""The figures that define "regulates", on synthetic waveforms with known answers (no simulator)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from buckbi.contract import Episode
from buckbi.converters.buck import EpisodeParams, scenario_params
from buckbi.evaluation.evaluate import Thresholds, figure_names, figures, response, step_response

VREF = 100.0
T = 20e-6


def rows(v: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"time": (np.arange(len(v)) + 1) * T, "V(out)": v})


def test_start_up_figures_of_a_known_waveform():
    # 0 -> 104 V (4 % overshoot) in 50 periods, 3 V above vref until period 199, then exactly vref + 0.5 V.
    v = np.r_[np.linspace(0, 104, 50), np.full(150, 103.0), np.full(800, 100.5)]
    r = response(rows(v), VREF)
    assert r.overshoot_pct == pytest.approx(4.0)
    assert r.steady_state_error_pct == pytest.approx(0.5)  # mean |v - vref| over the last quarter
    assert r.settling_time_ms == pytest.approx(201 * T * 1e3)  # first row from which it stays within 2 %


def test_a_waveform_that_ends_outside_the_band_never_settles_and_undershoot_is_no_overshoot():
    assert response(rows(np.r_[np.zeros(10), np.full(90, 97.0)]), VREF).settling_time_ms == math.inf
    r = response(rows(np.full(100, 99.0)), VREF)
    assert r.overshoot_pct == 0.0 and r.settling_time_ms == 0.0


def test_step_deviation_and_recovery():
    # A dip to 95 V at 40 ms, back inside 2 % 1.5 ms later.
    t = np.arange(1, 4001) * T
    v = np.full(4000, 100.0)
    dip = (t >= 40e-3) & (t < 41.5e-3)
    v[dip] = 95.0
    s = step_response(pd.DataFrame({"time": t, "V(out)": v}), VREF, 40e-3, 60e-3)
    assert s.deviation_pct == pytest.approx(5.0)
    assert s.recovery_ms == pytest.approx(1.5, abs=T * 1e3)


def test_figures_follow_the_scenarios_events():
    p = scenario_params(EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=VREF), "linestep")
    t = (np.arange(p.steps + 1) + 1) * T
    v = np.full(len(t), VREF)
    v[(t >= 60e-3) & (t < 60.5e-3)] = 103.0  # only the step back disturbs it
    ep = Episode("deploy", p, np.empty((len(t), 0)), None, None, pd.DataFrame({"time": t, "V(out)": v}), 0.0)
    f = figures(ep, "linestep")
    assert list(f) == figure_names("linestep")
    assert f["up_dev_%"] == 0.0 and f["up_rec_ms"] == 0.0
    assert f["down_dev_%"] == pytest.approx(3.0) and f["down_rec_ms"] == pytest.approx(0.5, abs=T * 1e3)
    assert figure_names("startup") == ["sse_%", "overshoot_%", "settle_ms"]


def test_thresholds_name_every_miss_and_failures():
    table = pd.DataFrame([
        {"point": 1, "nn_sse_%": 0.5, "nn_overshoot_%": 1.0, "nn_settle_ms": 2.0},
        {"point": 2, "nn_sse_%": 1.5, "nn_overshoot_%": 7.0, "nn_settle_ms": math.inf},
        {"point": 3, "nn_sse_%": np.nan, "nn_overshoot_%": np.nan, "nn_settle_ms": np.nan,
         "nn_error": "ConvergenceError: timestep too small"},
    ])
    misses = Thresholds(sse_pct=1.0, overshoot_pct=5.0).misses(table)
    assert misses["point"].tolist() == [2, 3]
    assert misses["misses"].iloc[0] == "sse_% 1.5 > 1; overshoot_% 7 > 5; settle_ms never"
    assert misses["misses"].iloc[1].startswith("ConvergenceError: timestep too small; sse_% missing")
