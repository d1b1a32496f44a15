"""``buckbi evaluate``: the NN alone beside the teacher on held-out operating points, with a verdict."""
from __future__ import annotations

import argparse
import os
import sys

from .common import (add_actor_choice, add_converter, add_dask, add_simulator, add_thresholds, check_network_converter,
                     check_simulator, converter_of, resolve, scenario_help, scenario_names, thresholds, verdict)


def add_parser(sub) -> None:
    v = sub.add_parser("evaluate", help="the NN alone vs the teacher on held-out operating points",
                       description="Runs the NN alone (deploy) and the teacher at held-out points; prints the "
                       "figures and a verdict against the thresholds (exit 1 when the NN misses one). The points are "
                       "drawn from the converter's ranges (--converter; the reference buck's by default).")
    add_actor_choice(v)
    v.add_argument("--scenario", choices=scenario_names(), default="startup", help=scenario_help())
    v.add_argument("--points", type=int, default=6, help="operating points (default 6)")
    v.add_argument("--seed", type=int, default=1, help="seed of the held-out draws (default 1)")
    v.add_argument("--steps", type=int, default=2048,
                   help="control periods per start-up run (default 2048; the load-step scenario runs 80 ms)")
    v.add_argument("--out", default="evaluation", help="folder for evaluate.csv and evaluate_plot.html")
    add_thresholds(v)
    add_converter(v)
    add_dask(v, "simulations at once (default 2)")
    add_simulator(v)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate, evaluation_figure, evaluation_header, held_out_points, write_report
    check_simulator(args.simulator)
    conv = converter_of(args)
    actor = resolve(args)
    check_network_converter(actor, conv, args)
    points = held_out_points(args.points, args.seed, args.steps, conv)
    th = thresholds(args)
    if args.scenario == "fra":  # the loop gain at the held-out points: Bode report, margins
        from ..engines import engine_for
        from .fra import run_points
        engine_for(args.simulator).require_runnable(actor)
        return run_points(args, actor, points)
    from ..converters.buck.scenarios import converter_settings
    from ..sweep.run import SCHEDULER_ENV
    settings = converter_settings(conv, args.scenario)  # the scenario's times and loads on this converter
    if args.scheduler or os.environ.get(SCHEDULER_ENV):  # the sweep's executor: one Dask task per point
        from ..evaluation.evaluate import evaluate_on_dask
        from ..sweep import dask_client
        from ..sweep.run import require_runnable
        require_runnable(actor, args.simulator)
        with dask_client(args.scheduler, args.jobs, args.dashboard) as client:
            table, nn_eps, teacher_eps = evaluate_on_dask(actor, points, client, args.simulator,
                                                          scenario=args.scenario, max_step=args.max_step,
                                                          settings=settings)
    else:
        table, nn_eps, teacher_eps = evaluate(actor, points, args.out, args.simulator, jobs=args.jobs,
                                              scenario=args.scenario, max_step=args.max_step, settings=settings)
    misses = th.misses(table)
    csv, html = write_report(table, evaluation_figure(points, nn_eps, teacher_eps, args.scenario, th, misses),
                             args.out, header=evaluation_header(table, args.scenario, th))
    import pandas as pd
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.2f}".format):
        print(table.drop(columns=[c for c in table.columns if c.endswith("_error")]).to_string(index=False))
    for who in ("nn", "teacher"):
        for err in table.get(f"{who}_error", pd.Series(dtype=object)).dropna():
            print(f"{who} run failed: {err}", file=sys.stderr)
    from ..converters.buck.scenarios import get_scenario
    at = [t * 1e3 for _, t in get_scenario(args.scenario).events_at(settings)]
    print(f"sse: steady-state |Vout-vref| over the last quarter (step scenarios: of 0-{at[0] if at else 40:g} ms), "
          "% of vref; overshoot % of vref; settle: time to stay within 2 % of vref (inf: never)."
          + (f" up/down ({args.scenario}): the steps at {at[0]:g} ms and {at[1]:g} ms (back): dev = largest "
             "|Vout-vref| % of vref, rec = ms until back within 2 %." if len(at) > 1 else "")
          + f" Table: {csv}; plot: {html}")
    return verdict("evaluate", [f"point {int(r.point)}: {r.misses}" for r in misses.itertuples()], len(table),
                   f"the thresholds ({th.text(args.scenario)})")
