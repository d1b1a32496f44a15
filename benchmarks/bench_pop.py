"""Benchmark: the loop gain by POP + AC against the injection on the fast simulator, one operating point, NN and
teacher, 35 frequencies (10 Hz .. 25 kHz, 3 per octave); then a margins sweep of N random points by POP + AC.

Run: ``.venv/bin/python benchmarks/bench_pop.py [--repeat 3] [--sweep 100] [--markdown]``. Medians after a warm-up
call (the kernel's compilation, the caches).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from timing import timed

from buckbi.converters.buck.spec import EpisodeParams
from buckbi.loopgain import frequencies, margins, measure
from buckbi.loopgain.pop import PopError, loop_gain
from buckbi.nn.actors import pretrained_actor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sweep", type=int, default=1000, help="random points of the margins sweep (default 1000)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    actor = pretrained_actor()
    p = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=64)
    f = frequencies(10, 25e3, 3)

    def pop() -> None:
        for who in ("nn", "teacher"):
            loop_gain(who, actor if who == "nn" else None, p, f)

    def inject() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            measure(actor, [p], f, tmp, "pwl")

    t_pop, t_inj = timed(pop, args.repeat), timed(inject, args.repeat)
    rng = np.random.default_rng(1)
    points = [EpisodeParams.random(rng, steps=64) for _ in range(args.sweep)]
    t0, failed = time.perf_counter(), 0
    for q in points:
        try:
            margins(f, loop_gain("nn", actor, q, f).T)
        except PopError:
            failed += 1
    sweep = time.perf_counter() - t0
    rows = [("one point, NN and teacher, 35 frequencies: POP + AC", f"{t_pop.median * 1e3:.0f} ms"),
            ("the same by injection (fast simulator)", f"{t_inj.median:.2f} s"),
            ("ratio", f"{t_inj.median / t_pop.median:.0f}x"),
            (f"margins of the NN at {args.sweep} random points by POP + AC ({failed} without an orbit)",
             f"{sweep:.1f} s ({sweep / args.sweep * 1e3:.0f} ms per point)")]
    if args.markdown:
        print("| what | figure |\n|---|---|")
        for what, fig in rows:
            print(f"| {what} | {fig} |")
    else:
        for what, fig in rows:
            print(f"{what}: {fig}")
        print(f"(POP {t_pop.text()}; injection {t_inj.text()})")


if __name__ == "__main__":
    main()
