"""Where a trained network's imitation falls short, from a training run's own rows: the duties it cannot reach at
steady state, its error by the teacher's duty, the network-driven rows whose teacher sits at a rail, and the range of
the accumulator NNin19.

    python benchmarks/imitation_gaps.py RUN [--actor PATH] [--converter FILE] [--episodes 1200:1600] [--every 3]

RUN is a ``buckbi train --workdir``; the network is RUN/actor_selected.pth unless --actor says otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

BANDS = ((0.0, 0.05), (0.05, 0.1), (0.1, 0.15), (0.15, 0.3), (0.3, 0.6), (0.6, 0.99), (0.99, 1.01))


def steady_state_roots(actor, conv) -> pd.DataFrame:
    """At each (vin, vref) of a 3 x 5 grid of the ranges, with the inputs at their steady state (Vo = vref, no error,
    the held duties at vref / vin): the accumulator value where the network gives that duty, and its slope there
    (the integrator gain per period; the teacher's: 2 pi g fz1 / fsw), or the range of duties it gives instead."""
    grid = np.linspace(-100.0, 100.0, 4001)
    ki = 2 * np.pi * conv.teacher.g * conv.teacher.fz1 / conv.fsw
    rows = []
    for vin in np.linspace(*conv.ranges["vin"], 3):
        for vref in np.linspace(*conv.ranges["vref"], 5):
            if vref >= vin:
                continue
            d = vref / vin
            x = np.zeros((len(grid), 19))
            x[:, 0:5], x[:, 10:15], x[:, 18] = vref / conv.vmax, d, grid
            x[:, 15], x[:, 16] = vin / conv.vmax, vref / conv.vmax
            with torch.no_grad():
                y = actor(torch.tensor(x, dtype=torch.float32)).numpy().ravel()
            cross = np.flatnonzero(np.sign(y[:-1] - d) * np.sign(y[1:] - d) < 0)
            row = {"vin": vin, "vref": vref, "duty": round(d, 3), "NNin19 there": None, "slope / teacher's": None,
                   "network's duties": f"{y.min():.3f}..{y.max():.3f}"}
            if len(cross):
                k = cross[np.argmin(np.abs(grid[cross]))]
                row["NNin19 there"] = round(float(grid[k]), 2)
                row["slope / teacher's"] = round(float((y[k + 1] - y[k]) / (grid[k + 1] - grid[k]) / -ki), 2)
            rows.append(row)
    return pd.DataFrame(rows)


def rows_of(run, episodes: range) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The NN inputs and the teacher's labels of the episodes a training folder (``RunDir``) kept, by gym."""
    from buckbi.converters.buck.spec import IO
    log = run.read_log().drop_duplicates("episode", keep="last").set_index("episode")
    out: dict[str, list] = {}
    for ep in episodes:
        if not run.rows(ep).exists() or ep not in log.index:
            continue
        r = pd.read_csv(run.rows(ep))
        out.setdefault(log.loc[ep, "gym"], []).append((r[IO.input_columns].to_numpy(),
                                                        r[IO.column(IO.label)].to_numpy()))
    return {g: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v])) for g, v in out.items()}


def main() -> int:
    from buckbi.converters.buck.design import load_converter
    from buckbi.nn.checkpoint import load_checkpoint
    from buckbi.train.artefacts import RunDir
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--actor", default=None)
    ap.add_argument("--converter", default=None)
    ap.add_argument("--episodes", default="1200:1600", help="first:last episode of the rows read")
    ap.add_argument("--every", type=int, default=3, help="read every N-th episode")
    args = ap.parse_args()
    run = Path(args.run)
    actor, _ = load_checkpoint(args.actor or run / "actor_selected.pth")
    conv = load_converter(args.converter)
    pd.set_option("display.width", 200)
    print(f"steady state on {conv.name} (Vo = vref, no error):")
    print(steady_state_roots(actor, conv).to_string(index=False))
    first, last = (int(v) for v in args.episodes.split(":"))
    by_gym = rows_of(RunDir(run), range(first, last + 1, args.every))
    x = np.concatenate([v[0] for v in by_gym.values()])
    y = np.concatenate([v[1] for v in by_gym.values()])
    with torch.no_grad():
        pred = actor(torch.tensor(x, dtype=torch.float32)).numpy().ravel()
    print(f"\nrows of episodes {first}..{last} (every {args.every}): the network's error by the teacher's duty")
    table = []
    for lo, hi in BANDS:
        m = (y >= lo) & (y < hi)
        table.append({"teacher's duty": f"{lo:g}..{hi:g}", "share of rows": round(float(m.mean()), 3),
                      "mean error": round(float(np.mean(pred[m] - y[m])), 4) if m.any() else None})
    print(pd.DataFrame(table).to_string(index=False))
    for gym, (_, labels) in sorted(by_gym.items()):
        print(f"{gym}: {len(labels)} rows, teacher at a rail (duty < 0.001 or > 0.99) in "
              f"{float(np.mean((labels < 0.001) | (labels > 0.99))):.1%}")
    q = np.quantile(x[:, 18], [0.05, 0.5, 0.95, 1.0])
    print(f"NNin19 (accumulator): 5 % {q[0]:.2f}, median {q[1]:.2f}, 95 % {q[2]:.2f}, max {q[3]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
