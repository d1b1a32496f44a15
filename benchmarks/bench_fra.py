"""Benchmark: the loop gain of one point, NN (pretrained) and teacher, 10 Hz..25 kHz at 3 per octave.

Run: ``.venv/bin/python benchmarks/bench_fra.py [--repeat 3] [--no-spice] [--jobs 2]``. Median wall time on the fast
simulator (after one warm-up call that compiles the kernel) and, unless --no-spice, in ngspice at T/400 (buckbi fra's
default) with ``--jobs`` simulations at once. Prints the margins of each run too, so that a speed-up that changes the
answer shows.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from buckbi.nn.actors import resolve_actor
from buckbi.converters.buck import EpisodeParams
from buckbi.loopgain import frequencies, margins_table, measure

POINT = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0)


def run(simulator: str, jobs: int) -> tuple[float, str]:
    actor = resolve_actor("pretrained")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = measure(actor, [POINT], frequencies(10, 25e3, 3), tmp, simulator, jobs=jobs)
        wall = time.perf_counter() - t
    m = margins_table(res.table)
    return wall, "; ".join(f"{r.controller}: fc {r.crossover_Hz:.0f} Hz PM {r.phase_margin_deg:.1f}" for r in m.itertuples())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-spice", action="store_true")
    a = ap.parse_args()
    run("pwl", 1)  # compiles the kernel
    for sim, repeat in (("pwl", a.repeat), ("ngspice", 1 if a.no_spice else a.repeat)):
        if sim == "ngspice" and a.no_spice:
            continue
        times, what = [], ""
        for _ in range(repeat):
            wall, what = run(sim, a.jobs)
            times.append(wall)
        print(f"{sim}: median {statistics.median(times):.2f} s over {repeat} ({', '.join(f'{t:.2f}' for t in times)}); "
              f"{what}")


if __name__ == "__main__":
    main()
