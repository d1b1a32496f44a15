"""A finished ``buckbi train`` run's model selection made again from its checkpoints with the recipe's selection
settings (``buckbi.train.selection.replay_selection``): what the run keeps had it run with them. Training never reads
the selection, so the kept network is the one a fresh run keeps (checked against one: bit for bit).

    python benchmarks/replay_selection.py RUN --seed N [--set select_by=closeness ...] [--converter FILE] [--out DIR]

Writes ``actor_selected.pth`` and ``selection.csv`` to DIR (default: the run's folder, its own two kept as *.before-replay).
About 15 s per scored checkpoint on this machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    from buckbi.nn.checkpoint import load_checkpoint
    from buckbi.train.recipes import with_settings
    from buckbi.train.selection import replay_selection
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--seed", type=int, required=True, help="the run's seed (its validation points)")
    ap.add_argument("--recipe", default="signoff")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--converter", default=None, metavar="FILE", help="the converter the run trained for")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from buckbi.converters.buck.design import load_converter
    recipe = with_settings(args.recipe, args.set)
    if args.converter:
        recipe = recipe.for_converter(load_converter(args.converter))
    try:
        table = replay_selection(Path(args.run), recipe, args.seed, Path(args.out) if args.out else None)
    except FileNotFoundError as e:
        print(f"replay_selection: {e}", file=sys.stderr)
        return 2
    _, meta = load_checkpoint(Path(args.out or args.run) / "actor_selected.pth")
    print(table.to_string(index=False))
    print(f"kept: episode {meta['episode']}, score {meta['score']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
