"""sample_on_clock returns exactly the rows of the seed's extract_data loop."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buckbi import ClockStartsHighError, NoClockEdgesError, extract_data, sample_on_clock
from buckbi.episodes.sampling import ClockColumnMissingError, SamplingError


def reference_rows(clk: np.ndarray, threshold: float, edge: str) -> list[int]:
    """The seed's state machine, extended to rising and both edges."""
    rows, state = [], "LOW"
    for i in range(1, len(clk)):
        if state == "LOW" and clk[i - 1] <= threshold and clk[i] > threshold:
            state = "HIGH"
            if edge in ("rising", "both"):
                rows.append(i)
        elif state == "HIGH" and clk[i - 1] > threshold and clk[i] <= threshold:
            state = "LOW"
            if edge in ("falling", "both"):
                rows.append(i)
    return rows


@st.composite
def clocks(draw):
    """Piecewise waveforms: long runs, 1-point glitches, values exactly at the threshold."""
    th = draw(st.sampled_from([0.5, 0.0, 0.25]))
    levels = st.one_of(st.just(th), st.floats(-2, 2, allow_nan=False), st.sampled_from([0.0, 1.0]))
    segments = draw(st.lists(st.tuples(levels, st.integers(1, 40)), min_size=1, max_size=60))
    values = np.concatenate([np.full(n, v) for v, n in segments])
    values[0] = min(values[0], th)  # the clock starts low (or exactly at the threshold)
    steps = draw(st.lists(st.floats(1e-12, 1e-5), min_size=len(values), max_size=len(values)))
    return values, th, np.cumsum(steps)


@settings(max_examples=300, deadline=None)
@given(wave=clocks(), edge=st.sampled_from(["falling", "rising", "both"]))
def test_matches_reference_loop(wave, edge):
    clk, th, t = wave
    df = pd.DataFrame({"time": t, "V(ctrlclk)": clk, "V(x)": np.arange(len(clk), dtype=float)})
    expected = reference_rows(clk, th, edge)
    if not expected:
        with pytest.raises(NoClockEdgesError):
            sample_on_clock(df, threshold=th, edge=edge)
        return
    got = sample_on_clock(df, threshold=th, edge=edge)
    assert got["V(x)"].astype(int).tolist() == expected
    pd.testing.assert_frame_equal(got, df.iloc[expected].reset_index(drop=True))


def test_extract_data_is_the_falling_edge_case():
    clk = np.array([0, 0, 1, 1, 0.5, 0, 1, 0.2, 0.7])
    df = pd.DataFrame({"V(ctrlclk)": clk, "k": range(len(clk))})
    assert extract_data(df)["k"].tolist() == [4, 7]
    assert sample_on_clock(df, edge="rising")["k"].tolist() == [2, 6, 8]
    assert sample_on_clock(df, edge="both")["k"].tolist() == [2, 4, 6, 7, 8]


def test_clock_starting_high_raises():
    with pytest.raises(ClockStartsHighError, match="starts high"):
        sample_on_clock(pd.DataFrame({"V(ctrlclk)": [1.0, 0.0, 1.0, 0.0]}))


def test_missing_column_suggests_the_right_case():
    with pytest.raises(ClockColumnMissingError, match="did you mean 'v\\(ctrlclk\\)'"):
        sample_on_clock(pd.DataFrame({"v(ctrlclk)": [0.0, 1.0, 0.0]}))


def test_no_edges_and_bad_arguments():
    with pytest.raises(NoClockEdgesError):
        sample_on_clock(pd.DataFrame({"V(ctrlclk)": [0.0, 0.2, 0.4]}))
    with pytest.raises(SamplingError, match="edge must be"):
        sample_on_clock(pd.DataFrame({"V(ctrlclk)": [0.0, 1.0, 0.0]}), edge="up")
    with pytest.raises(SamplingError, match="NaN"):
        sample_on_clock(pd.DataFrame({"V(ctrlclk)": [0.0, np.nan, 1.0, 0.0]}))
