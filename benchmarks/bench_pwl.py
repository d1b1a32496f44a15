"""Benchmark: the fast simulator (pwl) against ngspice on the same 2048-step episodes, side by side.

Run: ``.venv/bin/python benchmarks/bench_pwl.py [--repeat 3] [--steps 2048] [--batch 16] [--no-spice]``.
Per gym: median wall time of one episode on each simulator and the ratio; then a batch of episodes on pwl
(one process) for the per-episode figure of a training run. Times include episode set-up and sampling.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from buckbi import EpisodeParams
from buckbi.checkpoint import seed_actor
from buckbi.episode import run_episode, run_episodes


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-spice", action="store_true", help="pwl figures only")
    args = ap.parse_args()
    torch.manual_seed(0)
    actor = seed_actor().eval()
    params = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=args.steps)
    with tempfile.TemporaryDirectory() as warm:
        run_episode("gym2", actor, params, warm, "pwl")  # numba compiles (or loads its cache) once
    print(f"{args.steps}-step episodes, vin=200 ro=20 Lo=50u vref=100, actor 19-32-16-1; medians of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        for gym in ("teacher", "gym1", "gym2", "deploy"):
            a = None if gym == "teacher" else actor
            fast = median_time(lambda: run_episode(gym, a, params, tmp, "pwl"), args.repeat)
            line = f"{gym:8s} pwl {fast * 1e3:7.1f} ms"
            if not args.no_spice:
                spice = median_time(lambda: run_episode(gym, a, params, Path(tmp), "ngspice"), args.repeat)
                line += f"   ngspice {spice:6.2f} s   ratio {spice / fast:7.0f}x"
            print(line)
        rng = np.random.default_rng(0)
        batch = [EpisodeParams.random(rng, steps=args.steps) for _ in range(args.batch)]
        for gym in ("gym1", "gym2"):
            t = time.perf_counter()
            eps = run_episodes(gym, actor, batch, tmp, "pwl")
            wall = time.perf_counter() - t
            failed = sum(isinstance(e, Exception) for e in eps)
            print(f"batch of {args.batch} random points, {gym}: {wall / args.batch * 1e3:.1f} ms per episode"
                  f" ({failed} failed)")


if __name__ == "__main__":
    main()
