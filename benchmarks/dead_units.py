"""Dead hidden units of a training run's networks: per hidden layer, the units whose activation is positive on fewer
than 1 % of the rows of the run's own first episodes (a ReLU there passes no gradient: the unit has stopped learning).

    python benchmarks/dead_units.py RUN [RUN ...] [--at 1,800,1600] [--rows-from 39]

Each network is the one entering episode N (``actor_epN.pth``); the rows are the NN inputs of episodes 1..--rows-from
of the same run (``episodes/epK.csv.gz``). Prints markdown: "dead in layer 1 / of 32, dead in layer 2 / of 16".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def dead_units(actor, x) -> list[tuple[int, int]]:
    """(dead, units) per hidden layer: a unit is dead where its activation is > 0 on under 1 % of ``x``'s rows."""
    import torch
    from torch import nn
    out, h = [], x
    with torch.no_grad():
        for layer in actor:
            h = layer(h)
            if isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
                out.append((int(((h > 0).float().mean(0) < 0.01).sum()), h.shape[1]))
    return out


def main() -> int:
    import numpy as np
    import pandas as pd
    import torch

    from buckbi.nn.checkpoint import load_checkpoint
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--at", default="1,800,1600")
    ap.add_argument("--rows-from", type=int, default=39)
    args = ap.parse_args()
    at = [int(a) for a in args.at.split(",")]
    print("| run | " + " | ".join(f"episode {a}" for a in at) + " |")
    print("|---|" + "---|" * len(at))
    for run in map(Path, args.runs):
        cols = [f"V(nnin{i})" for i in range(1, 20)]
        x = torch.tensor(np.concatenate([pd.read_csv(run / "episodes" / f"ep{k}.csv.gz", usecols=cols)[cols].to_numpy()
                                         for k in range(1, args.rows_from + 1)]), dtype=torch.float32)
        cells = []
        for a in at:
            actor, _ = load_checkpoint(run / f"actor_ep{a}.pth")
            cells.append(", ".join(f"{d}/{n}" for d, n in dead_units(actor.float(), x)))
        print(f"| {run.name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
