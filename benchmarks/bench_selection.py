"""What the model selection sees of a run's checkpoints: at the recipe's own validation points (never the plan's
corners), the selection's two scores (``select_by`` "closeness" and "plan": the default plan's tests at those points,
lines the teacher passes and the network misses), and sign-off figures there — the least phase margin (POP + AC) and the
worst reference-step overshoot (% of the step) — to set beside the plan's verdicts (benchmarks/bench_checkpoints.py).

    python benchmarks/bench_selection.py RUN [--from 800] [--every 80] [--seed 1]

RUN is a ``buckbi train`` work folder of the signoff recipe (its ``actor_ep*.pth``). The row of episode N scores the
network leaving N's batch (``actor_ep{N+1}.pth``), as the selection does. About 15 s per checkpoint.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> int:
    from buckbi.evaluation.figures import episode_figures
    from buckbi.loopgain.margins import margins
    from buckbi.loopgain.pop import PopError, loop_gain
    from buckbi.nn.actors import resolve_actor
    from buckbi.train.recipes import get_recipe
    from buckbi.train.selection import Selection, leaving_checkpoint
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--from", dest="start", type=int, default=800)
    ap.add_argument("--every", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1, help="the run's seed (its validation points)")
    args = ap.parse_args()
    run = Path(args.run)
    from dataclasses import replace as with_
    recipe = with_(get_recipe("signoff"), select_by="plan")
    with tempfile.TemporaryDirectory() as tmp:
        sel = Selection(recipe, args.seed, Path(tmp))
        f = recipe.frequencies()
        for ep in range(args.start, 10**6, args.every):
            path = leaving_checkpoint(run, ep)
            if path is None:
                break
            actor = resolve_actor(str(path))
            pms = []
            for p in sel.v.points:
                try:
                    pms.append(margins(f, loop_gain("nn", actor, p, f).T).phase_margin_deg)
                except PopError:
                    pms.append(-np.inf)  # no stable orbit
            from dataclasses import replace

            from buckbi.converters.buck.scenarios import scenario_params
            from buckbi.episodes.run import run_episodes
            st = sel.v.settings["refstep"]
            params = [scenario_params(replace(p, steps=2048), "refstep", s) for p, s in zip(sel.v.points, st)]
            eps = run_episodes("deploy", actor, params, Path(tmp) / "ref", "pwl", scenario="refstep", settings=st,
                               parallel=len(params), keep_waveforms=True)
            over = [episode_figures(e).get("overshoot_pct", np.nan) if not isinstance(e, Exception) else np.inf
                    for e in eps]
            closeness = sel.step_error(actor) + sel.loop_gain_mismatch(actor)
            row = {"episode": ep, "closeness score": round(closeness, 3),
                   "validation-plan misses": sel.plan_misses(actor), "of": sum(sel.teacher_passes),
                   "least PM (deg)": round(float(np.nanmin(pms)), 1), "points PM<45": int(np.sum(np.array(pms) < 45)),
                   "no crossover": int(np.sum(np.isnan(pms))),
                   "worst ref-step overshoot (%)": round(float(np.nanmax(over)), 1),
                   "points overshoot>50": int(np.sum(np.array(over) > 50))}
            print(pd.DataFrame([row]).to_string(index=False, header=ep == args.start), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
