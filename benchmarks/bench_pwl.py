"""Benchmark: the fast simulator (pwl) against ngspice on the same 2048-step episodes, side by side.

Run: ``.venv/bin/python benchmarks/bench_pwl.py [--repeat 3] [--steps 2048] [--batch 16] [--no-spice]``.
Per gym: median wall time of one episode on each simulator and the ratio; then a batch of episodes on pwl
(one process) for the per-episode figure of a training run. Times include episode set-up and sampling.
Then the kernel alone (``buckbi.pwl.simulate``: set-up, kernel, no frames or files): one 2048-period deploy episode
(median), and a batch of tolerance draws in one ``simulate_batch`` call (numba threads over the batch), per episode.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import timed

from buckbi import EpisodeParams
from buckbi.nn.checkpoint import seed_actor
from buckbi.episodes.run import run_episode, run_episodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--no-spice", action="store_true", help="pwl figures only")
    ap.add_argument("--markdown", action="store_true", help="only the per-gym table, as the docs' markdown")
    ap.add_argument("--draws", type=int, default=64, help="tolerance draws in the kernel's batch figure")
    args = ap.parse_args()
    torch.manual_seed(0)
    actor = seed_actor().eval()
    params = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=args.steps)
    with tempfile.TemporaryDirectory() as warm:
        run_episode("gym2", actor, params, warm, "pwl")  # numba compiles (or loads its cache) once
    if not args.markdown:
        print(f"{args.steps}-step episodes, vin=200 ro=20 Lo=50u vref=100, actor 19-32-16-1; medians of {args.repeat}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for gym in ("teacher", "gym1", "gym2", "deploy"):
            a = None if gym == "teacher" else actor
            fast = timed(lambda: run_episode(gym, a, params, tmp, "pwl"), args.repeat).median
            row = {"episode": gym, "pwl": f"{fast * 1e3:.1f} ms"}
            line = f"{gym:8s} pwl {fast * 1e3:7.1f} ms"
            if not args.no_spice:  # the default form: the network as buckbi's XSPICE element where it is in the loop
                spice = timed(lambda: run_episode(gym, a, params, Path(tmp), "ngspice"), args.repeat).median
                line += f"   ngspice {spice:6.2f} s   ratio {spice / fast:7.0f}x"
                row |= {"ngspice (default form)": f"{spice:.2f} s", "ratio": f"{spice / fast:.0f}x"}
                if gym in ("gym2", "deploy"):  # the portable subcircuit (the file LTspice users get)
                    sub = timed(lambda: run_episode(gym, a, params, Path(tmp), "ngspice", nn_element="subckt"),
                                args.repeat).median
                    line += f"   (subcircuit {sub:6.2f} s, {sub / fast:.0f}x)"
                    row["ngspice, network as the portable subcircuit"] = f"{sub:.2f} s ({sub / fast:.0f}x)"
            rows.append(row)
            if not args.markdown:
                print(line)
        if args.markdown:
            cols = ["episode", "ngspice (default form)", "pwl", "ratio", "ngspice, network as the portable subcircuit"]
            print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
            for row in rows:
                print("| " + " | ".join(row.get(c, "") for c in cols) + " |")
            return
        rng = np.random.default_rng(0)
        batch = [EpisodeParams.random(rng, steps=args.steps) for _ in range(args.batch)]
        for gym in ("gym1", "gym2"):
            t = time.perf_counter()
            eps = run_episodes(gym, actor, batch, tmp, "pwl")
            wall = time.perf_counter() - t
            failed = sum(isinstance(e, Exception) for e in eps)
            print(f"batch of {args.batch} random points, {gym}: {wall / args.batch * 1e3:.1f} ms per episode"
                  f" ({failed} failed)")
    kernel_figures(args)


def kernel_figures(args) -> None:
    from dataclasses import replace

    from buckbi.nn.actors import pretrained_actor
    from buckbi.pwl.simulate import simulate, simulate_batch
    p = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=args.steps)
    torch.manual_seed(0)
    for name, actor in (("untrained", seed_actor().eval()), ("pretrained", pretrained_actor())):
        simulate("deploy", actor, p)
        one = timed(lambda: simulate("deploy", actor, p), max(15, args.repeat)).median
        wave = timed(lambda: simulate("deploy", actor, p, sub=20), max(15, args.repeat)).median
        print(f"kernel, deploy, {name} actor: {one * 1e3:.2f} ms per episode ({wave * 1e3:.2f} ms with the T/20 "
              "waveform and exact extremes)")
    rng = np.random.default_rng(1)
    draws = [replace(p, L1=p.L1 * rng.uniform(0.8, 1.2), C1=p.C1 * rng.uniform(0.8, 1.2),
                     ESR=p.ESR * np.exp(rng.uniform(np.log(0.5), np.log(2)))) for _ in range(args.draws)]
    simulate_batch("deploy", actor, draws[:2])
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        simulate_batch("deploy", actor, draws)
        times.append((time.perf_counter() - t) / len(draws))
    print(f"kernel, deploy, pretrained, batch of {len(draws)} tolerance draws in one call: "
          f"{statistics.median(times) * 1e3:.2f} ms per episode (median of {args.repeat} batches)")


if __name__ == "__main__":
    main()
