"""Benchmark: sample_on_clock (vectorised) vs the seed's extract_data loop on a 300k-row frame."""
from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from buckbi import sample_on_clock


def seed_loop(df: pd.DataFrame, clk_col: str = "V(ctrlclk)", threshold: float = 0.5) -> pd.DataFrame:
    clk = df[clk_col].values
    indices, state = [], "LOW"
    for i in range(1, len(clk)):
        if state == "LOW" and clk[i - 1] <= threshold and clk[i] > threshold:
            state = "HIGH"
        elif state == "HIGH" and clk[i - 1] > threshold and clk[i] <= threshold:
            indices.append(i)
            state = "LOW"
    return df.iloc[indices].reset_index(drop=True)


def main(rows: int = 300_000, repeat: int = 5) -> None:
    t = np.sort(np.random.default_rng(0).uniform(0, 41e-3, rows))
    clk = ((t * 50e3 + 0.25) % 1.0 < 0.5).astype(float)
    clk[0] = 0.0
    df = pd.DataFrame({"time": t, "V(ctrlclk)": clk, **{f"V(nnin{i})": np.sin(t * i) for i in range(1, 20)}})
    timings = {}
    for name, fn in (("vectorised", sample_on_clock), ("seed loop", seed_loop)):
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn(df)
            runs.append(time.perf_counter() - t0)
        timings[name] = statistics.median(runs)
        print(f"{name}: median {timings[name] * 1e3:.2f} ms ({len(out)} rows)")
    pd.testing.assert_frame_equal(sample_on_clock(df), seed_loop(df))
    print(f"speed-up: {timings['seed loop'] / timings['vectorised']:.0f}x on {rows} rows")


if __name__ == "__main__":
    main()
