"""``python -m buckbi.xspice build [--force]`` builds the code model; ``status`` says where it is."""
from __future__ import annotations

import argparse
import sys

from . import CodeModelError, codemodel_path, ngspice_version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m buckbi.xspice", description=__doc__)
    ap.add_argument("command", choices=("build", "status"))
    ap.add_argument("--force", action="store_true", help="rebuild even if a current build is installed")
    args = ap.parse_args(argv)
    if args.command == "status":
        path = codemodel_path()
        print(f"{ngspice_version() or 'no ngspice'}: " + (str(path) if path else "not built"))
        return 0 if path else 1
    from .build import UnsupportedNgspice, build
    try:
        path = build(force=args.force)
    except UnsupportedNgspice as err:
        print(f"buckbi: {err}", file=sys.stderr)
        return 3
    except CodeModelError as err:
        print(f"buckbi: {err}", file=sys.stderr)
        return 2
    print(f"buckbi: XSPICE network element ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
