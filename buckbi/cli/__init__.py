"""Command line: ``python -m buckbi train|evaluate|sweep|fra|testplan|export|import|converter``, a module per subcommand.

Heavy modules (PyTorch, pandas, SPICE readers) load inside the command that runs, so ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
import errno
import logging
import sys

from . import converter, evaluate, fra, networks, sweep, testplan, train
from .common import EXIT_BAD_INPUT, EXIT_STOPPED

SUBCOMMANDS = (train, evaluate, sweep, fra, testplan, networks, converter)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m buckbi", description=__doc__.splitlines()[0],
                                epilog="Exit codes: 0 the network passes the command's verdict, 1 it misses, "
                                       "2 bad input or set-up, 3 training stopped, 130 interrupted.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return p


def _errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input or set-up (one line, exit 2), loaded only when a command runs."""
    from ..contract import EpisodeError
    from ..export import ExportError
    from ..loopgain import FraError
    from ..loopgain.pop import PopError
    from ..nn.checkpoint import CheckpointError
    from ..sim import SimulatorError
    from ..train.schedule import ScheduleError
    from ..xspice import CodeModelError
    return (CheckpointError, ExportError, SimulatorError, EpisodeError, ScheduleError, ValueError, ConnectionError,
            FileNotFoundError, CodeModelError, FraError, PopError)


def os_error_line(err: OSError) -> str:
    """An operating-system error as one line naming the path and the fix."""
    where = f" {err.filename}" if err.filename else ""
    if err.errno == errno.ENOSPC:
        return f"the disk is full writing{where}; free space and run again (files already saved are kept)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {err.strerror}; choose a writable folder with --out (or --workdir)"
    if err.errno == errno.EEXIST:
        return f"cannot make the folder{where}: a file of that name exists; choose another --out"
    if err.errno == errno.ENOTDIR:
        return f"cannot write{where}: a part of that path is a file, not a folder; choose another --out"
    return f"{err.strerror or err}{where}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("spicelib").setLevel(logging.WARNING)  # buckbi reports failed runs itself
    logging.getLogger("distributed").setLevel(logging.WARNING)
    from ..train.loop import TrainingStopped
    try:
        return args.func(args)
    except TrainingStopped as err:
        print(f"buckbi {args.command}: stopped: {err}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print(f"buckbi {args.command}: interrupted; the last committed episode is kept, run again to resume",
              file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 (sorted below: ours and the OS's in one line, a bug as a traceback)
        if isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, ConnectionError)):
            print(f"buckbi {args.command}: error: {os_error_line(err)}", file=sys.stderr)  # a full disk, a read-only folder
            return EXIT_BAD_INPUT
        if isinstance(err, _errors()):
            print(f"buckbi {args.command}: error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
