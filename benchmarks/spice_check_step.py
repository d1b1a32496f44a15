"""One training episode's SPICE check made again at finer ngspice steps: is a refused check the fast engine's error or
ngspice's step? The episode is drawn as the run drew it (recipe, settings, seed, episode) and driven by the run's
latest network (``actor_final.pth``: after a refused check, the one that ran the refused batch).

    python benchmarks/spice_check_step.py RUN --seed N --episode E [--set ...] [--converter FILE] [--steps 1600 3200]

Prints the largest Vout deviation (% of vin) between the fast engine and ngspice at T/k for each k, and between
successive ngspice runs. A few minutes per ngspice run at T/3200 and 200 kHz.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def vout_gap(a, b, vin: float) -> float:
    """Largest |Vout| difference of two episodes sampled at the same instants, % of vin."""
    return float(np.abs(a.rows["V(out)"].to_numpy() - b.rows["V(out)"].to_numpy()).max() / vin * 100)


def main() -> int:
    from buckbi.converters.buck.design import load_converter
    from buckbi.episodes.run import run_episode
    from buckbi.nn.checkpoint import load_checkpoint
    from buckbi.train.recipes import with_settings
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--episode", type=int, required=True)
    ap.add_argument("--recipe", default="signoff")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--converter", default=None, metavar="FILE")
    ap.add_argument("--steps", type=int, nargs="+", default=[1600, 3200], help="ngspice runs at T/k for each k")
    args = ap.parse_args()
    conv = load_converter(args.converter)
    recipe = with_settings(args.recipe, args.set).for_converter(conv)
    plan = recipe.plan(args.seed, args.episode)
    actor, _ = load_checkpoint(Path(args.run) / "actor_final.pth")
    p = plan.params
    print(f"episode {args.episode}: {plan.gym} {plan.scenario} at vin {p.vin:.4g} V, vref {p.vref:.4g} V, ro {p.ro:.4g} Ohm,"
          f" noise {p.noise_mV:.3g} mV", flush=True)
    with tempfile.TemporaryDirectory(prefix="buckbi-step-") as tmp:
        runs = {"fast": run_episode(plan.gym, actor, p, Path(tmp) / "fast", "pwl", scenario=plan.scenario,
                                    settings=plan.settings)}
        for k in args.steps:
            t0 = time.perf_counter()
            runs[f"T/{k}"] = run_episode(plan.gym, actor, p, Path(tmp) / f"t{k}", "ngspice", scenario=plan.scenario,
                                         settings=plan.settings, max_step=1.0 / conv.fsw / k, timeout=7200)
            print(f"ngspice at T/{k}: {time.perf_counter() - t0:.0f} s", flush=True)
            for name, ep in runs.items():
                if name != f"T/{k}":
                    print(f"  Vout, {name} vs T/{k}: {vout_gap(ep, runs[f'T/{k}'], p.vin):.4f} % of vin", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
