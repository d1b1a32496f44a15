"""Command line: ``python -m buckbi export|...``."""
from __future__ import annotations

import argparse
import sys

from .sim import ENV_VAR


def _export(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .export import export_model
    model, _ = load_checkpoint(args.checkpoint)
    text = export_model(model, args.out, subckt_name=args.subckt, dialect=args.dialect, structure=args.structure)
    print(f"wrote {args.out}: subcircuit {args.subckt}, {args.dialect} dialect, {len(text.splitlines())} lines")
    return 0


def _not_yet(args: argparse.Namespace) -> int:
    print(f"buckbi {args.command}: not available yet. It needs the portable gym circuits (issue #4) and the "
          "training loop (issue #5), which have not landed; nothing was run. Available now: export.",
          file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m buckbi", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export a checkpoint's network as a SPICE subcircuit")
    e.add_argument("checkpoint", help="buckbi checkpoint or the seed's actor_*.pth state_dict")
    e.add_argument("--out", required=True, help="netlist file to write")
    e.add_argument("--dialect", choices=("ngspice", "ltspice"), default="ngspice")
    e.add_argument("--subckt", default="ActorSubckt", help="subcircuit name (default ActorSubckt)")
    e.add_argument("--structure", choices=("fast", "plain"), default="fast",
                   help="fast: VCCS sums (fastest to simulate); plain: one B-source per sum (readable)")
    e.add_argument("--simulator", default=None, help=f"unused by export; accepted everywhere (or ${ENV_VAR})")
    e.set_defaults(func=_export)
    for name, what in (("train", "behaviour-imitation training"), ("evaluate", "NN-vs-teacher evaluation")):
        t = sub.add_parser(name, help=f"{what} (not built yet: needs the gym circuits, issues #4/#5)")
        t.add_argument("rest", nargs=argparse.REMAINDER)
        t.set_defaults(func=_not_yet)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .export import ExportError
    from .sim import SimulatorError
    try:
        return args.func(args)
    except (CheckpointError, ExportError, SimulatorError) as err:
        print(f"buckbi {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
