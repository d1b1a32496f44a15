"""``buckbi sweep``: NN beside the teacher over a grid (or random draws) of operating points, on a Dask cluster."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (add_actor_choice, add_converter, add_dask, add_simulator, add_thresholds, check_network_converter,
                     check_simulator, converter_of, resolve, scenario_help, scenario_names, thresholds, verdict)


def add_parser(sub) -> None:
    w = sub.add_parser("sweep", help="NN vs teacher over a grid of operating points, on a Dask cluster",
                       description="Every point of a grid (or random draws) in deploy (the NN alone) and with the "
                       "teacher; sweep.csv grows as results come in (run again to resume), sweep.html shows "
                       "heatmaps with the region that misses the thresholds outlined; exit 1 when the NN misses "
                       "them anywhere.")
    add_actor_choice(w)
    where = w.add_mutually_exclusive_group()
    where.add_argument("--grid", default=None,
                       help="AXIS=START:STOP:COUNT or AXIS=VALUE per axis (vin, vref, ro, Lo), comma-separated; "
                            "axes left out stay at vin 200, vref 100, ro 20, Lo 50e-6 (with --converter: the centre "
                            "of its ranges). Default: 5 x 5 x 3 over the ranges' vin, vref, ro (the reference buck: "
                            "vin=150:250:5,vref=50:150:5,ro=5:80:3)")
    where.add_argument("--points", type=int, help="random points from the seed's ranges instead of a grid")
    w.add_argument("--seed", type=int, default=1, help="seed of --points draws (default 1)")
    w.add_argument("--scenario", choices=scenario_names(), default="startup", help=scenario_help())
    w.add_argument("--steps", type=int, default=2048, help="control periods per start-up run (default 2048)")
    w.add_argument("--out", default="sweep", help="folder for sweep.csv and sweep.html (default ./sweep)")
    w.add_argument("--axes", default=None, help="the two heatmap axes, e.g. vin,vref (default: the first two that vary)")
    add_thresholds(w)
    add_converter(w)
    w.add_argument("--timeout", type=float, default=900.0, help="seconds one simulation may take (default 900)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dask(w)
    add_simulator(w)
    w.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import dask_client, grid_points, parse_grid, random_points, run_sweep, write_sweep_report
    from ..converters.buck.scenarios import converter_settings
    from ..sweep.grid import default_grid
    from ..sweep.run import require_runnable, summary
    check_simulator(args.simulator)
    conv = converter_of(args)
    actor = resolve(args)
    check_network_converter(actor, conv, args)
    if args.points is not None:
        points, invalid = random_points(args.points, args.seed, args.steps, conv), 0
    else:
        points, invalid = grid_points(parse_grid(args.grid or default_grid(conv)), args.steps, conv)
    if invalid:
        print(f"{invalid} grid points have vref >= vin (a buck cannot reach them); left out", file=sys.stderr)
    th = thresholds(args)
    require_runnable(actor, args.simulator)
    with dask_client(args.scheduler, args.jobs, args.dashboard) as client:
        res = run_sweep(actor, points, args.out, client, scenario=args.scenario, simulator=args.simulator,
                        max_step=args.max_step, timeout=args.timeout, progress=not args.quiet,
                        settings=converter_settings(conv, args.scenario))
    table = res.table
    html = write_sweep_report(table, args.out, args.scenario, th, args.axes) if len(table) else None
    misses = [f"vin {r.vin:g} V, vref {r.vref:g} V, ro {r.ro:g} Ohm, Lo {r.Lo * 1e6:g} uH: {r.misses}"
              for r in th.misses(table).itertuples()] if len(table) else []
    print(f"{summary(table)} ({res.done_before} from before, {res.ran} run now in {res.wall_s:.1f} s). "
          f"Results: {Path(args.out) / 'sweep.csv'}; heatmaps: {html}")
    return verdict("sweep", misses, len(table), f"the thresholds ({th.text(args.scenario)})")
