"""``buckbi fra``: the loop gain (Bode, crossover, phase and gain margin), NN beside the teacher, with a verdict."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import (add_actor_choice, add_converter, add_dask, add_simulator, add_thresholds, check_network_converter,
                     check_simulator, converter_of, resolve, thresholds, verdict)


def add_parser(sub) -> None:
    g = sub.add_parser("fra", help="loop gain (Bode, crossover, phase and gain margin), NN beside the teacher",
                       description="Small-signal injection in series with the sensed output voltage (as LTspice's "
                       ".fra): after the start-up, a sine per frequency; T(f) = -V(out)/V(vsense) over whole injection "
                       "periods, less the same run without injection. Writes fra.csv, margins.csv, fra.html; exit 1 "
                       "when the NN's margins miss --min-phase-margin / --min-gain-margin.")
    add_actor_choice(g, " (SPICE only)")
    g.add_argument("--point", action="append", metavar="vin=V,vref=V,ro=OHM,Lo=H",
                   help="an operating point (repeatable; keys left out at vin 200, vref 100, ro 20, Lo 50e-6, or with "
                        "--converter at the centre of its ranges)")
    g.add_argument("--points", type=int, default=0, help="also N held-out points, as buckbi evaluate draws them")
    g.add_argument("--seed", type=int, default=1, help="seed of --points (default 1)")
    g.add_argument("--fstart", type=float, default=10.0, help="lowest frequency, Hz (default 10)")
    g.add_argument("--fend", type=float, default=None, help="highest frequency, Hz, at most fsw/2 (default fsw/2: "
                   "25e3 for the reference buck)")
    g.add_argument("--per-octave", type=int, default=3, help="frequencies per octave (default 3)")
    g.add_argument("--amplitude", type=float, default=0.05,
                   help="injection amplitude, V (default 0.05); per frequency it is scaled so that the controller sees "
                        "about this much (|V(vsense)| within 3x; see --check-linearity)")
    g.add_argument("--settle", type=float, default=None,
                   help="start-up before the averaging window, s (default: the converter's soft start, then 400 "
                        "control periods, 0.01 s for the reference buck, or 5 time constants of the loop's slowest "
                        "mode where that is longer: light loads; 250 ms more where POP finds no orbit)")
    g.add_argument("--check-linearity", action="store_true",
                   help="run every frequency again at half the amplitude and report where the gain moves by more "
                        "than 0.2 dB or 2 degrees")
    g.add_argument("--method", choices=("auto", "pop", "inject"), default="auto",
                   help="pop: the periodic operating point and the linearised period map (milliseconds per point, the "
                        "fast model, a PyTorch network); inject: a sine per frequency in a simulation (any simulator, "
                        "a netlist, the ADC, noise; the proof). auto (default): pop on --simulator pwl where it "
                        "applies, else inject")
    add_thresholds(g, transient=False)
    add_converter(g)
    add_dask(g, "simulations at once (default 2)")
    g.add_argument("--out", default="fra", help="folder for fra.csv, margins.csv, fra.html (default ./fra)")
    g.add_argument("--timeout", type=float, default=3600.0, help="seconds one simulation may take (default 3600)")
    add_simulator(g, "SPICE's largest time step, s (default T/400 for the loop gain: at T/20 ngspice's step error "
                     "moves the small injected response where |T| is large; pwl ignores it)")
    g.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engines import engine_for
    from ..evaluation.evaluate import held_out_points
    from ..loopgain import parse_point
    check_simulator(args.simulator)
    conv = converter_of(args)
    actor = resolve(args)
    check_network_converter(actor, conv, args)
    engine_for(args.simulator).require_runnable(actor)
    points = [parse_point(p, conv) for p in args.point or []]
    if args.points:
        points += held_out_points(args.points, args.seed, 64, conv)
    if not points:
        points = [parse_point("", conv)]  # the nominal point
    return run_points(args, actor, points)


def use_pop(method: str, actor, points: list, simulator) -> bool:
    """Whether the loop gain comes from POP + AC: asked for, or auto on the fast simulator where it applies."""
    from torch import nn

    from ..engines import is_fast
    from ..loopgain.pop import PopError, applies
    if method == "pop":
        if not isinstance(actor, nn.Module):
            raise PopError("--method pop needs a PyTorch network (--actor); a netlist runs by injection in SPICE "
                           "(--method inject), or import it first (buckbi import)")
        if not is_fast(simulator):
            raise PopError("--method pop runs on the fast model (--simulator pwl); SPICE measures by injection "
                           "(--method inject)")
        return True
    return method == "auto" and applies(actor, points, simulator)


def run_points(args: argparse.Namespace, actor, points: list) -> int:
    """The loop gain at ``points`` (buckbi fra, buckbi evaluate --scenario fra): report, margins, verdict."""
    from ..loopgain import AMPLITUDE, frequencies, measure, measure_on_dask, write_fra_report
    from ..sweep.run import SCHEDULER_ENV
    opt = lambda name, default: getattr(args, name, default)  # noqa: E731 (evaluate has fewer options)
    fstart, fend = opt("fstart", 10.0), opt("fend", None) or points[0].fsw / 2
    freqs = frequencies(fstart, fend, opt("per_octave", 3), points[0].fsw)
    run = dict(amplitude=opt("amplitude", AMPLITUDE), settle=opt("settle", None),
               soft_start_ms=converter_of(args).soft_start_ms,
               check_linearity=opt("check_linearity", False), timeout=opt("timeout", 3600.0), max_step=args.max_step)
    if use_pop(getattr(args, "method", "auto"), actor, points, args.simulator):
        from ..loopgain.pop import measure_pop
        result = measure_pop(actor, points, freqs)
    elif args.scheduler or os.environ.get(SCHEDULER_ENV):
        from ..sweep import dask_client
        with dask_client(args.scheduler, getattr(args, "jobs", 2), getattr(args, "dashboard", False)) as client:
            result = measure_on_dask(actor, points, freqs, client, args.simulator, **run)
    else:
        result = measure(actor, points, freqs, Path(args.out) / "sim", args.simulator, jobs=args.jobs, **run)
        import shutil
        shutil.rmtree(Path(args.out) / "sim", ignore_errors=True)
    th = thresholds(args)
    csv, mcsv, html, marg = write_fra_report(result.table, args.out, th)
    import pandas as pd
    points_df = pd.DataFrame([{"point": k, "vin": p.vin, "vref": p.vref, "ro": p.ro, "Lo_uH": p.Lo * 1e6}
                              for k, p in enumerate(points, 1)])
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print(points_df.merge(marg.drop(columns=["misses"], errors="ignore"), on="point").to_string(index=False))
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
    nn = marg[marg["controller"] == "nn"]
    return verdict("fra", [f"point {int(r.point)}: {r.misses}" for r in nn.itertuples() if r.misses], len(nn),
                   f"the loop-gain thresholds ({th.text('fra')})")
