"""A training run's networks followed through the run by their phase margin (POP + AC) at a few fixed points: where a
recipe's networks hold their small-signal law and where they lose it (a diagnosis; never a selection).

    python benchmarks/margin_trajectory.py RUN [RUN ...] [--every 100] [--last 1600]

For every --every-th episode N, the network entering it (``actor_epN.pth``) at vin/vref/ro 175/80/10, 225/120/20 and
180/110/150 (Lo 50 uH, nominal parts): the phase margin in degrees, "-" where the loop has no stable periodic orbit
(it oscillates). Prints one markdown row per run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

POINTS = ((175.0, 80.0, 10.0), (225.0, 120.0, 20.0), (180.0, 110.0, 150.0))


def margins_of(actor, points) -> list[float | None]:
    from buckbi.loopgain import frequencies, margins
    from buckbi.loopgain.pop import PopError, loop_gain
    f = frequencies(10.0, 25e3, 3)
    out: list[float | None] = []
    for p in points:
        try:
            out.append(float(margins(f, loop_gain("nn", actor, p, f).T).phase_margin_deg))
        except PopError:
            out.append(None)
    return out


def main() -> int:
    from buckbi.converters.buck.spec import EpisodeParams
    from buckbi.nn.checkpoint import load_checkpoint
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--last", type=int, default=1600)
    args = ap.parse_args()
    points = [EpisodeParams(vin=v, vref=r, ro=ro, Lo=50e-6) for v, r, ro in POINTS]
    episodes = list(range(args.every, args.last + 1, args.every))
    print("| run | " + " | ".join(str(e) for e in episodes) + " |")
    print("|---|" + "---|" * len(episodes))
    for run in args.runs:
        cells = []
        for ep in episodes:
            path = Path(run) / f"actor_ep{ep}.pth"
            if not path.exists():
                cells.append("")
                continue
            actor, _ = load_checkpoint(path)
            cells.append("/".join("-" if m is None else f"{m:.0f}" for m in margins_of(actor, points)))
        print(f"| {Path(run).name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
