"""What one optimiser step of the loop-gain term costs: the batch's targets (a linear solve per frequency at every
step, ``LoopGainTarget``) against the pool (the network's Jacobians and the precomputed rank-one terms,
``train/pool.py``), at 2 to 320 points; and what building a point costs either way.

    python benchmarks/bench_loop_gain_term.py [--repeat 30]

Medians of ``--repeat`` steps (forward and backward) after 3 warm-up steps, one thread, the shipped network, the
recipe's band (50 Hz .. 24 kHz, 3 per octave), points drawn over the recipe's box. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def points(n: int, seed: int = 0):
    """``n`` operating points of the recipe's box (vin 150-250 V, vref 20 V .. vin - 10, ro 5-1000 Ohm log)."""
    from buckbi.converters.buck.spec import EpisodeParams
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        vin = rng.uniform(150.0, 250.0)
        vref = rng.uniform(20.0, min(140.0, vin - 10.0))
        out.append(EpisodeParams(vin=vin, vref=vref, ro=float(np.exp(rng.uniform(np.log(5.0), np.log(1000.0)))),
                                 Lo=50e-6))
    return out


def main() -> int:
    import torch
    from timing import timed

    from buckbi.loopgain.pop import PopError
    from buckbi.nn.actors import pretrained_actor
    from buckbi.train.pool import LoopGainPool
    from buckbi.train.recipes import get_recipe
    from buckbi.train.signoff import LoopGainTarget, loop_gain_loss
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, f = pretrained_actor(), get_recipe("signoff").frequencies()
    drawn = points(48)
    t0 = time.perf_counter()
    targets = []
    for p in drawn:
        try:
            targets.append(LoopGainTarget(net, p, f))
        except PopError:
            pass
    build_target = (time.perf_counter() - t0) / len(drawn)
    pool = LoopGainPool(f, size=10**6)
    t0 = time.perf_counter()
    pool.add(drawn)
    build_pool = (time.perf_counter() - t0) / len(drawn)
    base = pool.points[0]
    print(f"building a point: a target {1e3 * build_target:.1f} ms, a pool point {1e3 * build_pool:.1f} ms "
          f"({len(drawn)} points, {len(targets)} and {len(pool)} with a teacher orbit)\n")
    print("| points | batch targets (ms/step) | pool (ms/step) | ratio |")
    print("|---|---|---|---|")
    for n in (2, 8, 40, 320):
        use = (targets * (n // len(targets) + 1))[:n]

        def plain():
            net.zero_grad()
            loop_gain_loss(net, use).backward()

        pool.points = [(base * (n // len(base) + 1))[:n]]
        pool.refresh(net)

        def pooled():
            net.zero_grad()
            pool.loss(net).backward()

        a = timed(plain, args.repeat, warmup=3).median if n <= 40 else float("nan")
        b = timed(pooled, args.repeat, warmup=3).median
        print(f"| {n} | {1e3 * a:.2f} | {1e3 * b:.2f} | {a / b:.1f} |" if np.isfinite(a) else
              f"| {n} | (not run) | {1e3 * b:.2f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
