"""Benchmark: 200 tolerance draws in SPICE on a Dask cluster of 1, 2, ... workers (the scaling of #20).

Run: ``.venv/bin/python benchmarks/bench_cluster.py [--workers 1 2] [--plan benchmarks/plans/mc200_spice.toml]``.
For each worker count it starts a real cluster on loopback (``dask scheduler`` and ``dask worker --nthreads 1``
processes, as on separate hosts), runs ``buckbi testplan PLAN --scheduler ...`` into a fresh folder, and prints the
wall time, cells per minute and the speed-up over the first count. The verdicts of every run must agree.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import statistics
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_for(path: Path, seconds: float = 60.0) -> dict:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size:
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        time.sleep(0.2)
    raise TimeoutError(f"no scheduler file {path} after {seconds:g} s")


def run_on_cluster(workers: int, plan: Path, actor: str, out: Path) -> tuple[float, pd.DataFrame]:
    """Wall time of the whole plan on a fresh loopback cluster of ``workers`` single-threaded workers."""
    with tempfile.TemporaryDirectory() as tmp:
        sf = Path(tmp) / "scheduler.json"
        procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(sf)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            address = wait_for(sf)["address"]
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sf), "--nworkers",
                                           str(workers), "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                                           "--memory-limit", "0"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT))
            from distributed import Client
            with Client(address) as c:
                c.wait_for_workers(workers, timeout=120)
            t = time.perf_counter()
            r = subprocess.run([str(BIN / "python"), "-m", "buckbi", "testplan", str(plan), "--actor", actor,
                                "--simulator", "ngspice", "--scheduler", address, "--out", str(out), "--quiet"],
                               cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if r.returncode not in (0, 1):
                raise RuntimeError(f"testplan exited {r.returncode}: {r.stderr[-2000:]}")
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                p.wait(timeout=60)
    return wall, pd.read_csv(out / "results.csv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--plan", type=Path, default=ROOT / "benchmarks/plans/mc200_spice.toml")
    ap.add_argument("--actor", default="pretrained")
    ap.add_argument("--repeat", type=int, default=3, help="runs per worker count, each on a fresh cluster (median)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench_cluster")
    args = ap.parse_args()
    print(f"{args.plan.name} in ngspice, actor {args.actor}, {os.cpu_count()} cores; workers of 1 thread each")
    first, ref = None, None
    for n in args.workers:
        walls = []
        for k in range(args.repeat):
            out = args.out / f"workers{n}-run{k + 1}"
            if out.exists():
                raise SystemExit(f"{out} exists: the figure needs a fresh run (remove it or give --out)")
            w, res = run_on_cluster(n, args.plan, args.actor, out)
            walls.append(w)
        wall = statistics.median(walls)
        res = res[pd.to_numeric(res["draw"], errors="coerce").notna()]  # the draws' rows (not worst / yield)
        cells = res.groupby(["test", "corner", "controller", "draw"]).ngroups
        first = first or wall
        key = ["test", "corner", "controller", "draw", "figure"]
        table = res.set_index(key)[["value", "verdict"]].sort_index()
        if ref is None:
            ref = table
        same = table["verdict"].equals(ref["verdict"])
        print(f"{n} worker(s): {wall:7.1f} s for {cells} cells = {cells / wall * 60:6.1f} cells/min, "
              f"speed-up {first / wall:4.2f}x, verdicts {'equal' if same else 'DIFFER'} to the first run's "
              f"(median of {len(walls)}: {', '.join(f'{w:.1f}' for w in walls)} s)")


if __name__ == "__main__":
    main()
