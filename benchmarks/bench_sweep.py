"""Benchmark: sweep throughput (points per minute, NN + teacher per point) with 1 and 2 local Dask workers.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--spice-points 8] [--pwl-points 64] [--steps 2048]``.
Each figure is the median of --repeat sweeps from scratch into a temporary folder, after a warm-up point on the same cluster
(worker start-up and numba loading are not counted).
"""
from __future__ import annotations

import argparse
import tempfile

from buckbi.nn.actors import resolve_actor
from buckbi.sweep import dask_client, random_points, run_sweep
from timing import timed


def rate(actor, n: int, steps: int, simulator: str, workers: int, repeat: int):
    with dask_client(None, workers) as client:
        with tempfile.TemporaryDirectory() as warm:
            run_sweep(actor, random_points(workers, 99, 64), warm, client, simulator=simulator, progress=False)
        def sweep() -> None:
            with tempfile.TemporaryDirectory() as out:
                res = run_sweep(actor, random_points(n, 1, steps), out, client, simulator=simulator, progress=False)
            assert res.failed == 0, res.table[res.table["status"] != "ok"][["key", "error"]].to_string()
        timing = timed(sweep, repeat, warmup=0)  # the warm-up point above
    return n / timing.median * 60, timing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spice-points", type=int, default=8)
    ap.add_argument("--pwl-points", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2048)
    ap.add_argument("--actor", default="pretrained")
    ap.add_argument("--repeat", type=int, default=3, help="timed sweeps per figure (default 3; the median)")
    ap.add_argument("--markdown", action="store_true", help="print the docs' table")
    args = ap.parse_args()
    actor = resolve_actor(args.actor)
    if not args.markdown:
        print(f"sweep throughput, actor {args.actor}, {args.steps}-step start-up runs (deploy + teacher per point)")
    else:
        print("| simulator | points | 1 worker | 2 workers |\n|---|---|---|---|")
    for simulator, n in (("pwl", args.pwl_points), ("ngspice", args.spice_points)):
        cells = []
        for workers in (1, 2):
            per_min, timing = rate(actor, n, args.steps, simulator, workers, args.repeat)
            cells.append(f"{per_min:.1f} points/min")
            if not args.markdown:
                print(f"{simulator:8s} {workers} worker(s): {per_min:8.1f} points/min ({n} points; {timing.text()})")
        if args.markdown:
            print(f"| {simulator} | {n} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
