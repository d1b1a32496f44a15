"""The sign-off figures (buckbi.evaluation.figures) on synthetic waveforms with known answers (no simulator)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from buckbi.contract import Episode
from buckbi.converters.buck import EpisodeParams, get_scenario, scenario_params
from buckbi.evaluation.figures import FIGURES, SCENARIO_FIGURES, episode_figures, figures_of, period_means
from buckbi.episodes.sampling import EXTREMES, period_extremes

VREF = 100.0
T = 20e-6
TOL = 1e-9


def synthetic(scenario: str, avg, ripple_pp: float = 1.0, settings: dict | None = None, duty=None,
              point: dict | None = None) -> Episode:
    """An episode whose V(out) is avg(t) (a function of the period's start) plus a zero-mean triangle of
    ``ripple_pp`` per period, on the engines' T/20 grid; rows at period ends with the triangle's extremes."""
    s = get_scenario(scenario)
    st = s.resolve_settings(settings)
    base = EpisodeParams(**({"vin": 200.0, "ro": 20.0, "Lo": 50e-6, "vref": VREF} | (point or {})))
    p = scenario_params(base, s, st) if s.duration(st) is not None else base
    n = p.steps + 1
    k = np.arange(n * 20)
    t = k * T / 20
    level = avg(np.floor(t / T) * T)
    phase = (k % 20) / 20  # a triangle 0 -> +pp/2 at half period -> back, mean 0 on the grid
    tri = ripple_pp * (np.abs(phase - 0.5) * -2 + 0.5)
    tri -= tri.reshape(n, 20).mean(axis=1).repeat(20)
    v = level + tri
    rows = pd.DataFrame({"time": (np.arange(n) + 1) * T})
    rows["V(out)"] = np.interp(rows["time"] - T / 40, t, v)
    rows["V(duty)"] = 0.5 if duty is None else duty(rows["time"].to_numpy())
    rows[list(EXTREMES)] = period_extremes(t, v, rows["time"].to_numpy() + 1e-12, T)
    wave = pd.DataFrame({"time": t, "V(out)": v})
    return Episode("deploy", p, np.zeros((n, 19)), None, None, rows, 0.0, wave, s.name, {}, st)


def test_period_means_are_exact_over_whole_periods():
    t = np.arange(20 * 10) * T / 20
    v = 3.0 + np.sin(2 * np.pi * t / T) + np.floor(t / T)  # a sine of the period averages to 0
    tm, vm = period_means(t, v, T)
    np.testing.assert_allclose(tm, (np.arange(10) + 1) * T)
    np.testing.assert_allclose(vm, 3.0 + np.arange(10), atol=1e-12)


def test_dc_error_is_the_period_average_and_ignores_the_ripple_phase():
    ep = synthetic("startup", lambda t: np.where(t < 5e-3, VREF * t / 5e-3, VREF + 0.3), ripple_pp=2.0)
    f = episode_figures(ep)
    assert f["dc_error_pct"] == pytest.approx(0.3, abs=TOL)
    assert f["ripple_pct"] == pytest.approx(2.0, abs=1e-6)  # 2 V p-p of 100 V
    assert f["sse_pct"] != pytest.approx(f["dc_error_pct"], abs=0.05)  # the sample sits on the triangle's slope
    assert f["overshoot_pct"] == pytest.approx(0.3, abs=TOL)
    assert set(f) == set(figures_of("startup"))


def test_start_up_overshoot_and_settling():
    # a 2 ms ramp, 104 V until 5 ms, 103 V until 8 ms, then vref + 0.5 V: settles (2 % band) when 103 V ends
    def avg(t):
        return np.select([t < 2e-3, t < 5e-3, t < 8e-3], [VREF * t / 2e-3, 104.0, 103.0], VREF + 0.5)
    f = episode_figures(synthetic("startup", avg))
    assert f["overshoot_pct"] == pytest.approx(4.0, abs=TOL)
    assert f["settle_ms"] == pytest.approx(8.02, abs=0.021)  # the end of the first period inside the band
    assert episode_figures(synthetic("startup", avg), band_pct=5.0)["settle_ms"] < 5.0


def test_a_start_up_that_ends_outside_the_band_never_settles():
    f = episode_figures(synthetic("startup", lambda t: np.minimum(VREF * t / 2e-3, 96.0)))
    assert f["settle_ms"] == math.inf and f["overshoot_pct"] == 0.0
    assert f["dc_error_pct"] == pytest.approx(4.0, abs=TOL)


def test_load_step_figures_and_load_regulation():
    # 100 V, at 40 ms a dip to 95 V for 1.5 ms then 99.9 V; at 60 ms up to 103 V for 0.5 ms, then 100 V
    def avg(t):
        return np.select([t < 40e-3, t < 41.5e-3, t < 60e-3, t < 60.5e-3], [VREF, 95.0, 99.9, 103.0], VREF)
    f = episode_figures(synthetic("loadstep", avg))
    assert f["undershoot_pct"] == pytest.approx(5.0, abs=TOL)
    assert f["overshoot_pct"] == pytest.approx(3.0, abs=TOL)
    assert f["step_dev_pct"] == pytest.approx(5.0, abs=TOL)
    assert f["recovery_ms"] == pytest.approx(1.5, abs=0.021)
    di = VREF / 10 - VREF / 80  # the default levels vref/80 -> vref/10 A
    assert f["load_reg_pct_per_A"] == pytest.approx(0.1 / di / VREF * 100, rel=1e-9)
    assert set(f) == set(figures_of("loadstep"))


def test_line_regulation_uses_the_settings_levels():
    # Vout_dc 100 V before, 100.2 V at the end of the stepped level: 0.2 V over 30 V (+15 % of 200 V)
    ep = synthetic("linestep", lambda t: np.where((t >= 40e-3) & (t < 60e-3), VREF + 0.2, VREF),
                   settings={"step_pct": 15})
    assert episode_figures(ep)["line_reg_pct_per_V"] == pytest.approx(0.2 / 30 / VREF * 100, rel=1e-9)


def test_reference_step_overshoot_is_per_step_size_in_the_steps_direction():
    # -10 %: 100 -> 90 V at 40 ms, undershooting to 88 V (20 % of the 10 V step); back to 100 V at 60 ms without
    # overshoot; settles 2 ms after each step
    def avg(t):
        return np.select([t < 40e-3, t < 41e-3, t < 42e-3, t < 60e-3, t < 62e-3],
                         [VREF, 88.0, 91.0, 90.0, 96.0], VREF)
    f = episode_figures(synthetic("refstep", avg))
    assert f["overshoot_pct"] == pytest.approx(20.0, abs=TOL)
    assert f["settle_ms"] == pytest.approx(2.0, abs=0.021)
    assert set(f) == set(figures_of("refstep"))


def test_saturated_time_counts_periods_at_0_or_1():
    ep = synthetic("startup", lambda t: np.full_like(t, VREF), duty=lambda t: np.where(t < 1e-3, 1.0, 0.5))
    assert episode_figures(ep)["saturated_ms"] == pytest.approx(1.0, abs=0.021)


def test_duty_swing_sees_a_period_2_oscillation_at_the_settled_end_of_any_level():
    flat = synthetic("startup", lambda t: np.full_like(t, VREF))
    assert episode_figures(flat)["duty_swing_pct"] == 0.0
    alternating = lambda t: 0.5 + 0.2 * (-1.0) ** np.round(t / T)  # noqa: E731  0.3 / 0.7 period by period
    assert episode_figures(synthetic("startup", lambda t: np.full_like(t, VREF), duty=alternating))[
        "duty_swing_pct"] == pytest.approx(40.0)
    # a load step whose heavy level alone oscillates (40 to 60 ms; the settled start-up and the end hold the duty)
    heavy = lambda t: np.where((t > 40e-3) & (t < 60e-3), alternating(t), 0.5)  # noqa: E731
    f = episode_figures(synthetic("loadstep", lambda t: np.full_like(t, VREF), duty=heavy))
    assert f["duty_swing_pct"] == pytest.approx(40.0, rel=0.01)  # (the row at 60 ms already back at 0.5)
    # a transient's swing (the duty stepping once after an event) is not a settled level's
    once = lambda t: np.where(t > 40e-3, 0.6, 0.5)  # noqa: E731
    assert episode_figures(synthetic("loadstep", lambda t: np.full_like(t, VREF), duty=once))["duty_swing_pct"] == 0.0


def test_long_run_judges_from_its_setting():
    ep = synthetic("longrun", lambda t: np.where((t > 50e-3) & (t < 51e-3), 97.0, VREF),
                   settings={"duration_ms": 100, "judge_from_ms": 20})
    ep.x[:, 18] = np.linspace(0, 7, len(ep.x))  # a drifting accumulator
    f = episode_figures(ep)
    assert f["max_dev_pct"] == pytest.approx(3.0, abs=TOL)
    assert f["max_abs_input"] == pytest.approx(7.0)


def test_every_scenario_has_its_figures_and_each_figure_is_described():
    from buckbi.converters.buck import SCENARIOS
    assert set(SCENARIO_FIGURES) == set(SCENARIOS)
    for names in SCENARIO_FIGURES.values():
        assert set(names) <= set(FIGURES)
    with pytest.raises(ValueError, match="keep_waveforms"):
        ep = synthetic("startup", lambda t: np.full_like(t, VREF))
        ep.waveforms = None
        episode_figures(ep)
