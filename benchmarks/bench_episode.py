"""Benchmark: one full-length episode (2048 steps) per gym in ngspice; medians, time points, raw size.

Run: ``.venv/bin/python benchmarks/bench_episode.py [--repeat 3] [--steps 2048]``. The gym-1 rows split the
time between the plant (teacher alone), a one-layer actor and the seed's 19-32-16-1 actor; gym 2 and deploy run
the network as buckbi's XSPICE element and as the portable subcircuit.
"""
from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

import torch
from timing import timed
from torch import nn

from buckbi import EpisodeParams
from buckbi.nn.checkpoint import seed_actor
from buckbi.episodes.run import collect_episode, prepare_episode, run_episode
from buckbi.sim import run_netlist


def run_once(gym: str, actor: nn.Module | None, params: EpisodeParams, workdir: Path) -> tuple[float, int, int]:
    job = prepare_episode(gym, actor, params, workdir, name="bench")  # the network in the circuit (seed's form)
    result = run_netlist(job, workdir, keep_files=True)
    collect_episode(gym, params, result)  # the sampling is part of an episode
    computed = int(re.findall(r"No\. of Data Rows\s*:\s*(\d+)", result.log)[-1])
    raw = next(f for f in result.files if f.suffix == ".raw")
    size = raw.stat().st_size
    for f in workdir.iterdir():
        f.unlink()
    return result.elapsed_s, computed, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2048)
    args = ap.parse_args()
    torch.manual_seed(0)
    params = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=args.steps)
    cases = [("teacher", "teacher alone", None),
             ("gym1", "gym1 in circuit, actor 19-1", nn.Sequential(nn.Linear(19, 1), nn.Sigmoid()).eval()),
             ("gym1", "gym1 in circuit, actor 19-32-16-1", seed_actor().eval()),
             ("gym2", "gym2, 19-32-16-1 subcircuit", seed_actor().eval())]
    print(f"{args.steps}-step episodes, vin=200 ro=20 vref=100; medians of {args.repeat} after one warm-up run each")
    with tempfile.TemporaryDirectory() as tmp:
        print("\nTable 1: run_episode as a user calls it (circuit, ngspice, sampling, the network's rows), wall time")
        # gym 1 as run_episode runs it on ngspice: the loop without the network, then the network on the rows
        split = timed(lambda: run_episode("gym1", seed_actor().eval(), params, tmp), args.repeat).median
        teacher = timed(lambda: run_episode("teacher", None, params, tmp), args.repeat).median
        print(f"{'gym1, network on the rows (default)':38s} {split:6.2f} s  ({split / teacher:.1f}x the teacher's "
              f"{teacher:.2f} s)")
        # The network in the loop: buckbi's XSPICE element (default where built) and the portable subcircuit
        for gym in ("gym2", "deploy"):
            for element in ("xspice", "subckt"):
                wall = timed(lambda: run_episode(gym, seed_actor().eval(), params, tmp, nn_element=element),
                             args.repeat).median
                label = f"{gym}, 19-32-16-1 as {element}"
                print(f"{label:38s} {wall:6.2f} s  ({wall / teacher:.1f}x the teacher's)")
        print("\nTable 2: the netlist alone in ngspice (no sampling), wall time, time points and raw file size")
        for gym, label, actor in cases:
            run_once(gym, actor, params, Path(tmp))  # warm-up
            runs = [run_once(gym, actor, params, Path(tmp)) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            print(f"{label:38s} {wall:6.2f} s  {runs[0][1] / (args.steps + 2):5.1f} time points/period  "
                  f"raw {runs[0][2] / 1e6:.1f} MB")

if __name__ == "__main__":
    main()
