"""Command line: ``python -m buckbi train|evaluate|sweep|fra|testplan|export|import``."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .sim import ENV_VAR


def _export(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .export import export_model
    model, _ = load_checkpoint(args.checkpoint)
    codemodel = None
    if args.structure == "xspice":
        from .xspice import require_codemodel
        codemodel = require_codemodel()
    text = export_model(model, args.out, subckt_name=args.subckt, dialect=args.dialect, structure=args.structure,
                        codemodel=codemodel)
    print(f"wrote {args.out}: subcircuit {args.subckt}, {args.dialect} dialect, {len(text.splitlines())} lines")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .checkpoint import save_checkpoint
    from .importer import import_network
    model = import_network(args.file)
    save_checkpoint(args.out, model, source=str(args.file), importer="buckbi.importer")
    shapes = " ".join(type(m).__name__ + (f"({m.in_features}->{m.out_features})" if hasattr(m, "in_features") else "")
                      for m in model)
    print(f"wrote {args.out}: {shapes} (from {args.file}); run it with --actor {args.out}")
    return 0


def _check_simulator(name: str | None) -> None:
    """Fail before anything is written when the chosen SPICE simulator is missing (pwl needs none)."""
    from .engines import engine_for
    engine_for(name).ensure_available()


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train
    _check_simulator(args.simulator)
    config = TrainConfig(workdir=Path(args.workdir), schedule=args.schedule, gym=args.gym, episodes=args.episodes,
                         steps=args.steps, epochs=args.epochs, lr=args.lr, seed=args.seed, jobs=args.jobs,
                         simulator=args.simulator, start_episode=args.start_episode, fresh=args.fresh,
                         max_failures=args.max_failures, timeout=args.timeout, progress=not args.quiet,
                         spice_check_every=args.spice_check_every, max_step=args.max_step)
    if config.check_every:
        _check_simulator(config.spice_simulator)
    log = train(config)
    ok = log[log["status"] == "ok"]
    last = f", last loss {ok['loss_actor'].iloc[-1]:.3e}" if len(ok) else ""
    print(f"{len(log)} episodes logged in {args.workdir}/log.csv{last}; "
          f"plots: {args.workdir}/loss_plot.html, {args.workdir}/episode_plot.html")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .actors import resolve_actor
    from .evaluate import evaluate, evaluation_figure, held_out_points, write_report
    _check_simulator(args.simulator)
    actor = resolve_actor(args.actor, args.netlist)
    points = held_out_points(args.points, args.seed, args.steps)
    if args.scenario == "fra":  # the loop gain at the held-out points: Bode report, margins
        from .engines import engine_for
        engine_for(args.simulator).require_runnable(actor)
        return _fra_run(args, actor, points)
    from .sweep.run import SCHEDULER_ENV
    if args.scheduler or os.environ.get(SCHEDULER_ENV):  # the sweep's executor: one Dask task per point
        from .evaluate import evaluate_on_dask
        from .sweep import dask_client
        from .sweep.run import require_runnable
        require_runnable(actor, args.simulator)
        with dask_client(args.scheduler, args.jobs, args.dashboard) as client:
            table, nn_eps, teacher_eps = evaluate_on_dask(actor, points, client, args.simulator,
                                                          scenario=args.scenario, max_step=args.max_step)
    else:
        table, nn_eps, teacher_eps = evaluate(actor, points, args.out, args.simulator, jobs=args.jobs,
                                              scenario=args.scenario, max_step=args.max_step)
    csv, html = write_report(table, evaluation_figure(points, nn_eps, teacher_eps, args.scenario), args.out)
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
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .actors import resolve_actor
    from .evaluate import Thresholds
    from .sweep import dask_client, grid_points, parse_grid, random_points, run_sweep, write_sweep_report
    from .sweep.run import require_runnable, summary
    _check_simulator(args.simulator)
    actor = resolve_actor(args.actor, args.netlist)
    if args.points is not None:
        points, invalid = random_points(args.points, args.seed, args.steps), 0
    else:
        points, invalid = grid_points(parse_grid(args.grid), args.steps)
    if invalid:
        print(f"{invalid} grid points have vref >= vin (a buck cannot reach them); left out", file=sys.stderr)
    th = Thresholds(args.max_sse, args.max_overshoot, args.max_step_deviation, args.max_recovery,
                    args.min_phase_margin, args.min_gain_margin)
    require_runnable(actor, args.simulator)
    with dask_client(args.scheduler, args.jobs, args.dashboard) as client:
        res = run_sweep(actor, points, args.out, client, scenario=args.scenario, simulator=args.simulator,
                        max_step=args.max_step, timeout=args.timeout, progress=not args.quiet)
    html = write_sweep_report(res.table, args.out, args.scenario, th, args.axes) if len(res.table) else None
    misses = th.misses(res.table[res.table["status"] == "ok"]) if len(res.table) else res.table
    print(f"{summary(res.table)} ({res.done_before} from before, {res.ran} run now in {res.wall_s:.1f} s); "
          f"NN misses the thresholds at {len(misses)}. Results: {Path(args.out) / 'sweep.csv'}; heatmaps: {html}")
    return 0


def _fra(args: argparse.Namespace) -> int:
    from .actors import resolve_actor
    from .engines import engine_for
    from .evaluate import held_out_points
    from .loopgain import parse_point
    _check_simulator(args.simulator)
    actor = resolve_actor(args.actor, args.netlist)
    engine_for(args.simulator).require_runnable(actor)
    points = [parse_point(p) for p in args.point or []]
    if args.points:
        points += held_out_points(args.points, args.seed, 64)
    if not points:
        points = [parse_point("")]  # the nominal point
    return _fra_run(args, actor, points)


def _fra_run(args: argparse.Namespace, actor, points: list) -> int:
    """The loop gain at ``points`` (buckbi fra, buckbi evaluate --scenario fra): report and printed margins."""
    from .loopgain import AMPLITUDE, SETTLE, frequencies, measure, measure_on_dask, write_fra_report
    from .sweep.run import SCHEDULER_ENV
    opt = lambda name, default: getattr(args, name, default)  # noqa: E731 (evaluate has fewer options)
    fstart, fend = opt("fstart", 10.0), opt("fend", 25e3)
    freqs = frequencies(fstart, fend, opt("per_octave", 3), points[0].fsw)
    run = dict(amplitude=opt("amplitude", AMPLITUDE), settle=opt("settle", SETTLE),
               check_linearity=opt("check_linearity", False), timeout=opt("timeout", 3600.0), max_step=args.max_step)
    if args.scheduler or os.environ.get(SCHEDULER_ENV):
        from .sweep import dask_client
        with dask_client(args.scheduler, getattr(args, "jobs", 2), getattr(args, "dashboard", False)) as client:
            result = measure_on_dask(actor, points, freqs, client, args.simulator, **run)
    else:
        result = measure(actor, points, freqs, Path(args.out) / "sim", args.simulator, jobs=args.jobs, **run)
        import shutil
        shutil.rmtree(Path(args.out) / "sim", ignore_errors=True)
    csv, mcsv, html, marg = write_fra_report(result.table, args.out)
    import pandas as pd
    points_df = pd.DataFrame([{"point": k, "vin": p.vin, "vref": p.vref, "ro": p.ro, "Lo_uH": p.Lo * 1e6}
                              for k, p in enumerate(points, 1)])
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print(points_df.merge(marg, on="point").to_string(index=False))
    bad = result.table[result.table["error"].astype(bool)]
    for _, row in bad.drop_duplicates("error").iterrows():
        print(f"point {row['point']} {row['controller']}: {row['error']}", file=sys.stderr)
    if "linear" in result.table:
        nonlin = result.table[~result.table["linear"].astype(bool)]
        for _, row in nonlin.iterrows():
            print(f"point {row['point']} {row['controller']} at {row['f_Hz']:.4g} Hz: halving the amplitude moves the "
                  f"gain by {row['half_amplitude_dB']:.2f} dB / {row['half_amplitude_deg']:.1f} deg: not linear at "
                  f"{row['amplitude_V']:g} V, use a smaller --amplitude", file=sys.stderr)
    print(f"crossover: |T| = 1; phase margin: 180 + phase of T there; gain margin: -|T| where the phase is -180 "
          f"(empty: not in {fstart:g}..{fend:g} Hz). Bode data: {csv}; margins: {mcsv}; plots: {html}")
    return 0


def _actor_choice(p: argparse.ArgumentParser, netlist_note: str = "") -> None:
    """--actor or --netlist, exactly one."""
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--actor", help="checkpoint, 'pretrained' or 'published'")
    who.add_argument("--netlist", help="a .subckt ActorSubckt file from any exporter, run as it is" + netlist_note)


def build_parser() -> argparse.ArgumentParser:
    from .train import TrainConfig
    d = TrainConfig()  # train's defaults are the config's
    p = argparse.ArgumentParser(prog="python -m buckbi", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sim_help = (f"auto (default), ngspice, ltspice, or pwl: the fast exact simulator of the gyms (or ${ENV_VAR})")
    step_help = "SPICE's largest time step in seconds (default T/20 = 1e-6 at 50 kHz; pwl ignores it)"
    from .converters.buck.scenarios import SCENARIOS
    # (argparse formats help text with %: the descriptions' percentages are escaped)
    scenario_help = "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()).replace("%", "%%") + \
        " (default startup)"

    t = sub.add_parser("train", help="behaviour-imitation training in SPICE (resumes where it stopped)",
                       description="Behaviour imitation of the Type-III teacher, as the seed notebook: per episode "
                       "export the actor, run a SPICE episode, fit 200 Adam epochs on its batch, log and plot.")
    t.add_argument("--workdir", default=str(d.workdir), help=f"training folder (default ./{d.workdir}, as the seed)")
    t.add_argument("--schedule", default=d.schedule, help=f"GYM:EPISODES,... (default {d.schedule})")
    t.add_argument("--gym", choices=("gym1", "gym2"), help="run every episode in this gym (overrides --schedule)")
    t.add_argument("--episodes", type=int, help="episodes to run now (default: to the end of the schedule)")
    t.add_argument("--steps", type=int, default=d.steps, help=f"control periods per episode (default {d.steps})")
    t.add_argument("--epochs", type=int, default=d.epochs, help=f"Adam epochs per update (default {d.epochs})")
    t.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    t.add_argument("--seed", type=int, help="makes parameter draws and initial weights reproducible")
    t.add_argument("--jobs", type=int, default=d.jobs,
                   help="simulate N episodes at once with the same actor and update on their joined batch; "
                        "--jobs 1 (default) is the seed's strictly sequential behaviour")
    t.add_argument("--start-episode", type=int, help="restart at episode N: log rows >= N are dropped (the seed's "
                   "train_loop(N, ...)); the actor is the latest (actor_final.pth)")
    t.add_argument("--fresh", action="store_true", help="start over; an earlier run is moved to previous-<time>/")
    t.add_argument("--max-failures", type=int, default=d.max_failures,
                   help=f"stop after this many failed episodes in a row (default {d.max_failures})")
    t.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds one episode may take (default {d.timeout:g})")
    t.add_argument("--quiet", action="store_true", help="no progress bar: one log line per episode")
    t.add_argument("--simulator", default=None, help=sim_help)
    t.add_argument("--max-step", type=float, default=d.max_step, help=step_help)
    t.add_argument("--spice-check-every", type=int, default=None, metavar="N",
                   help="with --simulator pwl: every N-th episode also runs in ngspice with the same actor and "
                        "point, at a converged step (T/400); its deviation goes into log.csv and one beyond "
                        "buckbi.pwl.agreement.SPICE_CHECK stops training (default 100; 0: off)")
    t.set_defaults(func=_train)

    v = sub.add_parser("evaluate", help="the NN alone vs the teacher on held-out operating points")
    who = v.add_mutually_exclusive_group(required=True)
    who.add_argument("--actor", help="checkpoint (actor_final.pth, actor_epN.pth or a seed state_dict), 'pretrained' "
                     "(buckbi's shipped actor) or 'published' (the reference's trained actor, shipped with buckbi)")
    who.add_argument("--netlist", help="a network exported by any tool: a file with '.subckt ActorSubckt' and the "
                     "seed's 19+1 ports (LTspice if() or ngspice syntax), run as it is")
    v.add_argument("--scenario", choices=tuple(SCENARIOS), default="startup", help=scenario_help)
    v.add_argument("--points", type=int, default=6, help="operating points (default 6)")
    v.add_argument("--seed", type=int, default=1, help="seed of the held-out draws (default 1)")
    v.add_argument("--steps", type=int, default=2048,
                   help="control periods per start-up run (default 2048; the load-step scenario runs 80 ms)")
    v.add_argument("--jobs", type=int, default=2, help="simulations at once (default 2)")
    v.add_argument("--scheduler", default=None, help="run the points on a Dask cluster (tcp://HOST:PORT, or "
                   "$BUCKBI_DASK_SCHEDULER), one task per point, as buckbi sweep does")
    v.add_argument("--out", default="evaluation", help="folder for evaluate.csv and evaluate_plot.html")
    v.add_argument("--dashboard", action="store_true",
                   help="with a local cluster: serve Dask's dashboard on 127.0.0.1 (a free port; off by default: "
                        "the local cluster listens on loopback only)")
    v.add_argument("--simulator", default=None, help=sim_help)
    v.add_argument("--max-step", type=float, default=None, help=step_help)
    v.set_defaults(func=_evaluate)

    w = sub.add_parser("sweep", help="NN vs teacher over a grid of operating points, on a Dask cluster",
                       description="Every point of a grid (or random draws) in deploy (the NN alone) and with the "
                       "teacher; sweep.csv grows as results come in (run again to resume), sweep.html shows "
                       "heatmaps with the region that misses the thresholds outlined.")
    _actor_choice(w)
    where = w.add_mutually_exclusive_group()
    where.add_argument("--grid", default="vin=150:250:5,vref=50:150:5,ro=5:80:3",
                       help="AXIS=START:STOP:COUNT or AXIS=VALUE per axis (vin, vref, ro, Lo), comma-separated; "
                            "axes left out stay at vin 200, vref 100, ro 20, Lo 50e-6 (default %(default)s)")
    where.add_argument("--points", type=int, help="random points from the seed's ranges instead of a grid")
    w.add_argument("--seed", type=int, default=1, help="seed of --points draws (default 1)")
    w.add_argument("--scenario", choices=tuple(SCENARIOS), default="startup", help=scenario_help)
    w.add_argument("--steps", type=int, default=2048, help="control periods per start-up run (default 2048)")
    w.add_argument("--out", default="sweep", help="folder for sweep.csv and sweep.html (default ./sweep)")
    w.add_argument("--jobs", type=int, default=2, help="local Dask workers when no --scheduler is given (default 2)")
    w.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (tcp://HOST:PORT), "
                   "else $BUCKBI_DASK_SCHEDULER, else a local cluster of --jobs workers")
    w.add_argument("--axes", default=None, help="the two heatmap axes, e.g. vin,vref (default: the first two that vary)")
    w.add_argument("--max-sse", type=float, default=1.0, help="threshold: steady-state error, %% of vref (default 1)")
    w.add_argument("--max-overshoot", type=float, default=5.0, help="threshold: overshoot, %% of vref (default 5)")
    w.add_argument("--max-step-deviation", type=float, default=10.0,
                   help="threshold: load-step deviation, %% of vref (default 10)")
    w.add_argument("--max-recovery", type=float, default=10.0, help="threshold: load-step recovery, ms (default 10)")
    w.add_argument("--min-phase-margin", type=float, default=45.0,
                   help="threshold (--scenario fra): smallest phase margin, degrees (default 45)")
    w.add_argument("--min-gain-margin", type=float, default=6.0,
                   help="threshold (--scenario fra): smallest gain margin, dB (default 6)")
    w.add_argument("--timeout", type=float, default=900.0, help="seconds one simulation may take (default 900)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.add_argument("--dashboard", action="store_true",
                   help="with a local cluster: serve Dask's dashboard on 127.0.0.1 (a free port; off by default: "
                        "the local cluster listens on loopback only)")
    w.add_argument("--simulator", default=None, help=sim_help)
    w.add_argument("--max-step", type=float, default=None, help=step_help)
    w.set_defaults(func=_sweep)

    g = sub.add_parser("fra", help="loop gain (Bode, crossover, phase and gain margin), NN beside the teacher",
                       description="Small-signal injection in series with the sensed output voltage (as LTspice's "
                       ".fra): after the start-up, a sine per frequency; T(f) = -V(out)/V(vsense) over whole injection "
                       "periods, less the same run without injection. Writes fra.csv, margins.csv, fra.html.")
    _actor_choice(g, " (SPICE only)")
    g.add_argument("--point", action="append", metavar="vin=V,vref=V,ro=OHM,Lo=H",
                   help="an operating point (repeatable; keys left out at vin 200, vref 100, ro 20, Lo 50e-6)")
    g.add_argument("--points", type=int, default=0, help="also N held-out points, as buckbi evaluate draws them")
    g.add_argument("--seed", type=int, default=1, help="seed of --points (default 1)")
    g.add_argument("--fstart", type=float, default=10.0, help="lowest frequency, Hz (default 10)")
    g.add_argument("--fend", type=float, default=25e3, help="highest frequency, Hz, at most fsw/2 (default 25e3)")
    g.add_argument("--per-octave", type=int, default=3, help="frequencies per octave (default 3)")
    g.add_argument("--amplitude", type=float, default=0.05,
                   help="injection amplitude, V (default 0.05); per frequency it is scaled so that the controller sees "
                        "about this much (|V(vsense)| within 3x; see --check-linearity)")
    g.add_argument("--settle", type=float, default=10e-3, help="start-up before the averaging window, s (default 0.01)")
    g.add_argument("--check-linearity", action="store_true",
                   help="run every frequency again at half the amplitude and report where the gain moves by more "
                        "than 0.2 dB or 2 degrees")
    g.add_argument("--jobs", type=int, default=2, help="simulations at once (default 2)")
    g.add_argument("--scheduler", default=None, help="a Dask scheduler (or $BUCKBI_DASK_SCHEDULER): one task per point "
                   "and controller")
    g.add_argument("--out", default="fra", help="folder for fra.csv, margins.csv, fra.html (default ./fra)")
    g.add_argument("--timeout", type=float, default=3600.0, help="seconds one simulation may take (default 3600)")
    g.add_argument("--dashboard", action="store_true",
                   help="with a local cluster: serve Dask's dashboard on 127.0.0.1 (a free port; off by default: "
                        "the local cluster listens on loopback only)")
    g.add_argument("--simulator", default=None, help=sim_help)
    g.add_argument("--max-step", type=float, default=None,
                   help="SPICE's largest time step, s (default T/400 for the loop gain: at T/20 ngspice's step error "
                        "moves the small injected response where |T| is large; pwl ignores it)")
    g.set_defaults(func=_fra)

    from .testplan.cli import add_parser as add_testplan
    add_testplan(sub, _actor_choice, ENV_VAR)
    m = sub.add_parser("import", help="another exporter's subcircuit file as a buckbi checkpoint (PyTorch model)",
                       description="Reads a feed-forward network written as B sources (the reference's exporter: "
                       "linear units, IF() ReLU, sigmoid, tanh) and saves it as a checkpoint equal to the file.")
    m.add_argument("file", help="the .sp file with '.subckt ActorSubckt' (19 inputs, 1 output)")
    m.add_argument("--out", required=True, help="checkpoint to write (e.g. actor.pth)")
    m.set_defaults(func=_import)

    e = sub.add_parser("export", help="export a checkpoint's network as a SPICE subcircuit")
    e.add_argument("checkpoint", help="buckbi checkpoint or the seed's actor_*.pth state_dict")
    e.add_argument("--out", required=True, help="netlist file to write")
    e.add_argument("--dialect", choices=("ngspice", "ltspice"), default="ngspice")
    e.add_argument("--subckt", default="ActorSubckt", help="subcircuit name (default ActorSubckt)")
    e.add_argument("--structure", choices=("fast", "plain", "xspice"), default="fast",
                   help="fast: VCCS sums (portable, fastest of the two); plain: one B-source per sum (readable); "
                        "xspice: one element of buckbi's ngspice code model (python -m buckbi.xspice build)")
    e.add_argument("--simulator", default=None, help=f"unused by export; accepted everywhere (or ${ENV_VAR})")
    e.set_defaults(func=_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("spicelib").setLevel(logging.WARNING)  # buckbi reports failed runs itself
    logging.getLogger("distributed").setLevel(logging.WARNING)
    from .checkpoint import CheckpointError
    from .contract import EpisodeError
    from .loopgain import FraError
    from .xspice import CodeModelError
    from .export import ExportError
    from .sim import SimulatorError
    from .train import ScheduleError, TrainingStopped
    try:
        return args.func(args)
    except TrainingStopped as err:
        print(f"buckbi {args.command}: stopped: {err}", file=sys.stderr)
        return 3
    except (CheckpointError, ExportError, SimulatorError, EpisodeError, ScheduleError, ValueError, ConnectionError,
            FileNotFoundError, CodeModelError, FraError) as err:
        print(f"buckbi {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"buckbi {args.command}: interrupted; the last committed episode is kept, run again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
