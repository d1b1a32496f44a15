"""``buckbi converter check FILE``: a converter file's teacher, its margins and start-up at the ranges' corners."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    q = sub.add_parser("converter", help="your own buck: check a converter file and its teacher",
                       description="A converter file (TOML: [converter], [ranges], [teacher]; "
                                   "buckbi/converters/buck/reference.toml is the reference's) describes a buck for "
                                   "every command's --converter.")
    verbs = q.add_subparsers(dest="verb", required=True)
    c = verbs.add_parser("check", help="the teacher's values, loop gain, margins and start-up at the corners",
                         description="Read FILE (designing the teacher where it gives crossover_Hz and "
                                     "phase_margin_deg), then measure the teacher at the corners of its ranges: loop "
                                     "gain by POP + AC (crossover, phase and gain margin) and a start-up (DC error, "
                                     "overshoot, settling) on the fast engine. Exit 0 when the teacher regulates "
                                     "everywhere and meets its design target at the centre (crossover within 10 %%, "
                                     "phase margin within 5 degrees), 1 when not, 2 for a bad file.")
    c.add_argument("file", metavar="FILE", help="a converter file, or a shipped one by name: reference, buck-48v")
    c.add_argument("--out", default="reports/converter", help="folder for check.csv and the start-up runs "
                   "(default reports/converter)")
    c.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..converters.buck.check import check_converter
    from ..converters.buck.design import load_converter
    conv = load_converter(args.file)
    how = (f"designed for {conv.design_target[0]:g} Hz crossover and {conv.design_target[1]:g} deg phase margin at "
           "the ranges' centre (k-factor, corrected on POP + AC)" if conv.design_target else "as given")
    t = conv.teacher
    print(f"converter {conv.name} ({conv.source}): fsw {conv.fsw:g} Hz, vmax {conv.vmax:g} V, L1 {conv.L1:g} H, "
          f"C1 {conv.C1:g} F (ESR {conv.ESR:g} Ohm)")
    print(f"teacher {how}: g = {t.g:.6g}, fz1 = {t.fz1:.6g} Hz, fz2 = {t.fz2:.6g} Hz, fp1 = {t.fp1:.6g} Hz, "
          f"fp2 = {t.fp2:.6g} Hz")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = check_converter(conv, out / "runs")
    res.table.to_csv(out / "check.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(res.table.drop(columns=[c for c in ("error",) if c in res.table]).to_string(
            index=False, float_format=lambda v: f"{v:.4g}"))
    for line in res.failures:
        print(f"FAIL {line}", file=sys.stderr)
    if res.failures:
        print(f"verdict: FAIL: the teacher misses {len(res.failures)} check(s); table: {out / 'check.csv'}")
        return 1
    target = " and meets its design target at the centre" if conv.design_target else ""
    print(f"verdict: PASS: the teacher regulates at all {len(res.table)} points{target}; table: {out / 'check.csv'}")
    return 0
