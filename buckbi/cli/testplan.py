"""``buckbi testplan PLAN``: a sign-off test plan (exit 0 all NN cells pass, 1 any fails, 2 a bad plan or set-up)."""
from __future__ import annotations

import argparse
import sys

from ..sim.names import ENV_VAR
from .common import add_actor_choice, add_converter, check_network_converter, resolve


def add_parser(sub) -> None:
    q = sub.add_parser("testplan", help="a sign-off test plan: corners x tests x limits, NN beside the teacher",
                       description="Run every test of PLAN (a TOML file, or 'default': the plan shipped with buckbi) "
                                   "at each of its corners for the NN (deploy) and the teacher; write results.csv, "
                                   "junit.xml and report.html into --out. Resumes where it stopped. Exit 0 when "
                                   "every NN cell passes, 1 when any fails, 2 for a bad plan.")
    q.add_argument("plan", metavar="PLAN", help="a plan file (.toml), 'default', or 'init': write a plan for "
                   "--converter (its corners, the default plan's tests, limits its teacher meets) into --out")
    add_actor_choice(q, " (SPICE only)", required=False)
    q.add_argument("--simulator", default=None, help=f"ngspice (default, or ${ENV_VAR}), ltspice, or pwl (the fast "
                   "exact simulator: the whole default plan in minutes)")
    q.add_argument("--jobs", type=int, default=2, help="local Dask workers when no --scheduler is given (default 2)")
    q.add_argument("--scheduler", default=None, help="a Dask scheduler (tcp:// or tls://HOST:PORT, or "
                   "$BUCKBI_DASK_SCHEDULER): one task per cell")
    q.add_argument("--dashboard", action="store_true", help="serve the local cluster's Dask dashboard (127.0.0.1)")
    q.add_argument("--out", default="reports/testplan", help="results folder (default reports/testplan); a run "
                   "resumes there, cells whose definition changed run again")
    q.add_argument("--only", default=None, metavar="TEST[CORNER]", help="run one test, or one test at one corner")
    q.add_argument("--max-step", type=float, default=None, help="SPICE's largest time step, s (default T/100 in "
                   "transient cells: at T/20 ngspice's step error keeps a lightly damped NN loop moving; the loop "
                   "gain: T/400)")
    q.add_argument("--timeout", type=float, default=3600.0, help="seconds per SPICE run (default 3600)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    add_converter(q)
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engines import engine_for
    from ..sweep import dask_client
    from ..testplan.plan import load_plan
    from ..testplan.report import cell_verdicts, results_table, summary_table, write_plan_report
    from ..testplan.run import plan_cells, run_plan

    from ..converters.buck.converter import reference
    from ..converters.buck.design import load_converter
    if args.plan == "init":
        from pathlib import Path

        from ..converters.buck.plan_init import write_plan
        conv = load_converter(args.converter)
        out = Path(args.out) if args.out.endswith(".toml") else Path(args.out) / f"{conv.name}-signoff.toml"
        path = write_plan(conv, out, jobs=args.jobs)
        print(f"wrote {path}: the plan for converter {conv.name}, each limit one its teacher meets (the comments say "
              f"where each number came from); run it with buckbi testplan {path} --actor ...")
        return 0
    plan = load_plan(args.plan, args.converter)  # PlanError (a ValueError): exit 2 with the table and key
    engine = engine_for(args.simulator)
    engine.ensure_available()
    actor = resolve(args)
    check_network_converter(actor, plan.converter or reference(), args)
    engine.require_runnable(actor)
    sim_name = engine.name + (f"@{args.max_step!r}" if args.max_step else "")
    plan_cells(plan, actor, sim_name, args.only)  # a bad --only: before a cluster starts
    with dask_client(args.scheduler, args.jobs, args.dashboard) as client:
        res = run_plan(plan, actor, args.out, client, simulator=args.simulator, simulator_name=sim_name,
                       timeout=args.timeout, max_step=args.max_step, only=args.only, progress=not args.quiet)
    paths = write_plan_report(plan, res, args.out)
    verdicts = cell_verdicts(results_table(plan, res))
    nn, teacher = verdicts[verdicts["controller"] == "nn"], verdicts[verdicts["controller"] == "teacher"]
    failed = nn[nn["verdict"] == "fail"]
    for r in failed.itertuples():
        t = teacher[(teacher["test"] == r.test) & (teacher["corner"] == r.corner)]
        beside = f" (teacher: {t['verdict'].iloc[0]})" if len(t) else ""
        print(f"FAIL {r.test}[{r.corner}]: {r.why}{beside}", file=sys.stderr)
    print(summary_table(verdicts).to_string(index=False))
    print(f"{plan.name}: {len(nn)} lines (test x corner), NN {len(nn) - len(failed)} pass, {len(failed)} fail; teacher "
          f"{int((teacher['verdict'] == 'pass').sum())} of {len(teacher)} pass ({res.done_before} from before, "
          f"{res.ran} run now in {res.wall_s:.1f} s). Results: {paths['results']}; report: {paths['report']}; "
          f"JUnit: {paths['junit']}")
    return 1 if len(failed) else 0
