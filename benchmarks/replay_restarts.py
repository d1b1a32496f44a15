"""The restarts' pick made from runs already trained: each run's kept network scored at the restarts' validation
draw (the first run's seed), the best kept in OUT (what ``--set restarts=K`` keeps, the runs being those of its
seeds: ``--seed s`` trains seeds K(s-1)+1 .. Ks).

    python benchmarks/replay_restarts.py RUN1 RUN2 [...] --out DIR [--set NAME=VALUE ...]

Writes DIR/restarts.csv and DIR/actor_selected.pth; prints the table.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> int:
    from buckbi.train.recipes import with_settings
    from buckbi.train.restarts import pick_restart
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--recipe", default="signoff")
    ap.add_argument("--set", action="append", default=[], dest="settings")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = pick_restart(args.out, with_settings(args.recipe, args.settings), args.runs)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
