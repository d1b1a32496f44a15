"""``buckbi evaluate``: the NN alone beside the teacher on held-out operating points, with a verdict."""
from __future__ import annotations

import argparse
import os
import sys

from .common import (add_actor_choice, add_dask, add_simulator, add_thresholds, check_simulator, resolve,
                     scenario_help, scenario_names, thresholds, verdict)


def add_parser(sub) -> None:
    v = sub.add_parser("evaluate", help="the NN alone vs the teacher on held-out operating points",
                       description="Runs the NN alone (deploy) and the teacher at held-out points; prints the "
                       "figures and a verdict against the thresholds (exit 1 when the NN misses one).")
    add_actor_choice(v)
    v.add_argument("--scenario", choices=scenario_names(), default="startup", help=scenario_help())
    v.add_argument("--points", type=int, default=6, help="operating points (default 6)")
    v.add_argument("--seed", type=int, default=1, help="seed of the held-out draws (default 1)")
    v.add_argument("--steps", type=int, default=2048,
                   help="control periods per start-up run (default 2048; the load-step scenario runs 80 ms)")
    v.add_argument("--out", default="evaluation", help="folder for evaluate.csv and evaluate_plot.html")
    add_thresholds(v)
    add_dask(v, "simulations at once (default 2)")
    add_simulator(v)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate, evaluation_figure, evaluation_header, held_out_points, write_report
    check_simulator(args.simulator)
    actor = resolve(args)
    points = held_out_points(args.points, args.seed, args.steps)
    th = thresholds(args)
    if args.scenario == "fra":  # the loop gain at the held-out points: Bode report, margins
        from ..engines import engine_for
        from .fra import run_points
        engine_for(args.simulator).require_runnable(actor)
        return run_points(args, actor, points)
    from ..sweep.run import SCHEDULER_ENV
    if args.scheduler or os.environ.get(SCHEDULER_ENV):  # the sweep's executor: one Dask task per point
        from ..evaluation.evaluate import evaluate_on_dask
        from ..sweep import dask_client
        from ..sweep.run import require_runnable
        require_runnable(actor, args.simulator)
        with dask_client(args.scheduler, args.jobs, args.dashboard) as client:
            table, nn_eps, teacher_eps = evaluate_on_dask(actor, points, client, args.simulator,
                                                          scenario=args.scenario, max_step=args.max_step)
    else:
        table, nn_eps, teacher_eps = evaluate(actor, points, args.out, args.simulator, jobs=args.jobs,
                                              scenario=args.scenario, max_step=args.max_step)
    misses = th.misses(table)
    csv, html = write_report(table, evaluation_figure(points, nn_eps, teacher_eps, args.scenario, th, misses),
                             args.out, header=evaluation_header(table, args.scenario, th))
    import pandas as pd
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.2f}".format):
        print(table.drop(columns=[c for c in table.columns if c.endswith("_error")]).to_string(index=False))
    for who in ("nn", "teacher"):
        for err in table.get(f"{who}_error", pd.Series(dtype=object)).dropna():
            print(f"{who} run failed: {err}", file=sys.stderr)
    print("sse: steady-state |Vout-vref| over the last quarter (load step: of 0-40 ms), % of vref; overshoot % of "
          "vref; settle: time to stay within 2 % of vref (inf: never)."
          + (f" up/down ({args.scenario}): the steps at 40 ms and 60 ms (back): dev = largest |Vout-vref| "
             "% of vref, rec = ms until back within 2 %." if args.scenario != "startup" else "")
          + f" Table: {csv}; plot: {html}")
    return verdict("evaluate", [f"point {int(r.point)}: {r.misses}" for r in misses.itertuples()], len(table),
                   f"the thresholds ({th.text(args.scenario)})")
