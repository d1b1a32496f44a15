"""Benchmark: 1000 tolerance draws x (start-up + load step) at one corner on the fast simulator (#20 item 4).

Run: ``.venv/bin/python benchmarks/bench_montecarlo.py [--plan benchmarks/plans/mc1000_fast.toml] [--jobs 2]``.
Runs ``buckbi testplan PLAN --simulator pwl`` into a fresh folder as a user would, once to warm up, then
``--repeat`` times (the median) (local Dask cluster, the draws in
batches of one kernel call) and prints its wall time, the cells per second and the yields it found.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from timing import timed

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plan", type=Path, default=ROOT / "benchmarks/plans/mc1000_fast.toml")
    ap.add_argument("--actor", default="pretrained")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs after one warm-up run (default 3)")
    args = ap.parse_args()
    found = {}

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, "-m", "buckbi", "testplan", str(args.plan), "--actor", args.actor,
                                "--simulator", "pwl", "--jobs", str(args.jobs), "--out", tmp, "--quiet"],
                               cwd=ROOT, capture_output=True, text=True)
            if r.returncode not in (0, 1):
                raise SystemExit(f"testplan exited {r.returncode}: {r.stderr[-2000:]}")
            found["res"] = pd.read_csv(Path(tmp) / "results.csv")
    timing = timed(run, args.repeat)
    wall, res = timing.median, found["res"]
    draws = res[pd.to_numeric(res["draw"], errors="coerce").notna()]
    cells = draws.groupby(["test", "corner", "controller", "draw"]).ngroups
    print(f"{args.plan.name}, actor {args.actor}, {os.cpu_count()} cores, --jobs {args.jobs}: {wall:.1f} s for "
          f"{cells} cells ({cells / wall:.1f} cells/s, the command's whole run; {timing.text()})")
    yields = res[res["figure"] == "yield_pct"]
    for row in yields.itertuples():
        print(f"  {row.test} {row.controller}: yield {row.value:.1f} %")


if __name__ == "__main__":
    main()
