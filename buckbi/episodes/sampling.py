"""Pick the rows of a simulation at the edges of a control clock, as the seed's ``extract_data`` does."""
from __future__ import annotations

import numpy as np
import pandas as pd

EDGES = ("falling", "rising", "both")


class SamplingError(ValueError):
    """The clock trace cannot be sampled as asked."""


class ClockStartsHighError(SamplingError):
    """The clock is above the threshold at the first point, so the first edge is ambiguous."""


class NoClockEdgesError(SamplingError):
    """The clock never crosses the threshold in the requested direction."""


class ClockColumnMissingError(SamplingError, KeyError):
    """The frame has no such clock column."""

    def __str__(self) -> str:
        return self.args[0]


def edge_indices(clk: np.ndarray, threshold: float = 0.5, edge: str = "falling") -> np.ndarray:
    """Index of the first point after each crossing: ``prev <= th < curr`` rises, ``prev > th >= curr`` falls.

    Crossings of one threshold alternate, so this equals the seed's LOW/HIGH state machine
    once the clock starts low.
    """
    if edge not in EDGES:
        raise SamplingError(f"edge must be one of {EDGES}, got {edge!r}")
    above = np.asarray(clk, dtype=np.float64) > threshold
    rising = np.flatnonzero(~above[:-1] & above[1:]) + 1
    falling = np.flatnonzero(above[:-1] & ~above[1:]) + 1
    if edge == "rising":
        return rising
    if edge == "falling":
        return falling
    return np.sort(np.concatenate([rising, falling]))


def sample_on_clock(df: pd.DataFrame, clk: str = "V(ctrlclk)", threshold: float = 0.5,
                    edge: str = "falling") -> pd.DataFrame:
    """Rows of ``df`` at the first point after each ``edge`` of column ``clk``, index reset."""
    if clk not in df.columns:
        close = [c for c in df.columns if c.lower() == clk.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ClockColumnMissingError(f"clock column {clk!r} is not in the frame{hint}; "
                                      f"columns: {list(df.columns)[:25]}")
    values = df[clk].to_numpy(dtype=np.float64)
    if len(values) == 0:
        raise NoClockEdgesError(f"the frame is empty, so {clk} has no edges")
    if not np.all(np.isfinite(values)):
        raise SamplingError(f"clock column {clk!r} holds NaN or infinite values")
    if values[0] > threshold:
        raise ClockStartsHighError(
            f"clock {clk} starts high ({values[0]:g} > {threshold:g}); the first edge is ambiguous. "
            "Delay the clock so it starts low (e.g. a PULSE with a positive delay).")
    idx = edge_indices(values, threshold, edge)
    if len(idx) == 0:
        raise NoClockEdgesError(f"clock {clk} has no {edge} edge through {threshold:g} in {len(values)} points; "
                                "check the clock source and the simulated time span.")
    return df.iloc[idx].reset_index(drop=True)


def extract_data(df: pd.DataFrame, clk_col: str = "V(ctrlclk)", threshold: float = 0.5) -> pd.DataFrame:
    """The seed notebook's name: rows at each falling edge of ``clk_col``."""
    return sample_on_clock(df, clk=clk_col, threshold=threshold, edge="falling")


EXTREMES = ("V(out)_min", "V(out)_max")  # rows' columns: V(out)'s extremes over the period that ends at the row


def period_extremes(t: np.ndarray, v: np.ndarray, row_times: np.ndarray, period: float) -> np.ndarray:
    """(min, max) of ``v`` over (t_k - period, t_k] for each row time t_k, from every point of (t, v) (NaN where a
    window holds no point)."""
    lo = np.searchsorted(t, row_times - period, side="right")
    hi = np.searchsorted(t, row_times, side="right")
    out = np.full((len(row_times), 2), np.nan)
    for k, (a, b) in enumerate(zip(lo, hi)):
        if b > a:
            out[k] = v[a:b].min(), v[a:b].max()
    return out
