"""Benchmark: CPU time of the command line's start-up (``python -m buckbi --help``, a subcommand's ``--help``) and of
``./buckbi.sh --help`` once set up, against another checkout (the code before the lazy imports).

Run: ``.venv/bin/python benchmarks/bench_startup.py [--before PATH_OF_OLD_CHECKOUT] [--repeat 5]``; make the old
checkout with ``git worktree add /tmp/buckbi-before 94aa24f``. CPU time (user + system, the child's own) is what the
issue asks for; wall time is printed beside it. Medians after one warm-up run (the OS's file cache).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_and_wall(cmd: list[str], env: dict, cwd: Path = ROOT) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def measure(cmd: list[str], env: dict, repeat: int, cwd: Path = ROOT) -> str:
    cpu_and_wall(cmd, env, cwd)  # warm-up
    runs = [cpu_and_wall(cmd, env, cwd) for _ in range(repeat)]
    cpu, wall = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    return f"CPU {cpu:5.2f} s, wall {wall:5.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, default=None, help="an older checkout to compare with (its buckbi/)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--markdown", action="store_true", help="print the figures as the docs' table")
    args = ap.parse_args()
    checkouts = [("now", ROOT)] + ([("before", args.before)] if args.before else [])
    rows: dict[str, dict[str, str]] = {}
    for label, where in checkouts:
        env = dict(os.environ, PYTHONPATH=str(where))  # and run from there: -m puts the folder first
        for what in (["--help"], ["evaluate", "--help"], ["train", "--help"]):
            cmd = [sys.executable, "-m", "buckbi", *what]
            rows.setdefault(f"`python -m buckbi {' '.join(what)}`", {})[label] = measure(cmd, env, args.repeat, where)
    rows["`./buckbi.sh --help`, set up"] = {"now": measure(["./buckbi.sh", "--help"], dict(os.environ), args.repeat)}
    if args.markdown:
        cols = [label for label, _ in checkouts][::-1]
        print("| command | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
        for name, by in rows.items():
            print(f"| {name} | " + " | ".join(by.get(c, "—") for c in cols) + " |")
    else:
        print(f"medians of {args.repeat} after a warm-up, {os.cpu_count()} cores")
        for name, by in rows.items():
            for label, text in by.items():
                print(f"{label:6s} {name:40s} {text}")

if __name__ == "__main__":
    main()
