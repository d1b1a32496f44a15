"""Options several subcommands share (actor, simulator, thresholds, Dask) and the one verdict convention."""
from __future__ import annotations

import argparse
import sys

from ..sim.names import ENV_VAR

SIM_HELP = f"auto (default), ngspice, ltspice, or pwl: the fast exact simulator of the gyms (or ${ENV_VAR})"
STEP_HELP = "SPICE's largest time step in seconds (default T/20 = 1e-6 at 50 kHz; pwl ignores it)"
ARCH_HELP = ("the layers of a bare state dict, e.g. '19-64-64-1:tanh,tanh,sigmoid' (widths, then one activation "
             "per Linear layer: relu, tanh, sigmoid, silu, hardsigmoid, relu6, elu, leaky_relu(0.01), "
             "softplus, none); a state dict holds no activations")
TRUST_HELP = ("load a full pickled module (torch.save(model)) or a TorchScript file: this runs code from the "
              "file, so give it only for files you trust")

# Exit codes of every command (README, 'Verdicts and exit codes').
EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3


def scenario_help() -> str:
    """Every scenario with its description (argparse formats help with %: percentages escaped)."""
    from ..converters.buck.scenarios import SCENARIOS
    return "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()).replace("%", "%%") + \
        " (default startup)"


def scenario_names() -> tuple[str, ...]:
    from ..converters.buck.scenarios import SCENARIOS
    return tuple(SCENARIOS)


def add_network_options(p: argparse.ArgumentParser) -> None:
    """--arch and --trust-pickle: how a checkpoint that is not buckbi's own is read."""
    p.add_argument("--arch", default=None, metavar="ARCH", help=ARCH_HELP)
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)


def add_actor_choice(p: argparse.ArgumentParser, netlist_note: str = "", required: bool = True) -> None:
    """--actor or --netlist, exactly one, and how a checkpoint is read."""
    who = p.add_mutually_exclusive_group(required=required)
    who.add_argument("--actor", help="checkpoint (buckbi's, a state dict with --arch, a module or TorchScript file "
                     "with --trust-pickle), 'pretrained' (buckbi's shipped actor), 'seed-pretrained' (the one "
                     "before it) or 'published' (the reference's)")
    who.add_argument("--netlist", help="a network exported by any tool: a file with '.subckt ActorSubckt' and the "
                     "seed's 19+1 ports (LTspice if() or ngspice syntax), run as it is" + netlist_note)
    add_network_options(p)


def add_converter(p: argparse.ArgumentParser, network: bool = True) -> None:
    """--converter FILE (your buck: buckbi/converters/buck/reference.toml's schema) and --allow-other-converter."""
    p.add_argument("--converter", default=None, metavar="FILE", help="the buck, as a converter file (TOML; "
                   "'buck-48v' and 'reference' name the shipped ones; default: the reference's buck)")
    if network:
        p.add_argument("--allow-other-converter", action="store_true", help="run a network on a converter other "
                       "than the one it was trained for (refused without it: it imitates another teacher on "
                       "another power stage)")


def converter_of(args: argparse.Namespace):
    """The Converter of --converter (the reference buck without it)."""
    from ..converters.buck.design import load_converter
    return load_converter(getattr(args, "converter", None))


def check_network_converter(actor, conv, args: argparse.Namespace) -> None:
    """Refuse a network trained for another converter unless --allow-other-converter (a netlist: as its header says)."""
    from ..converters.buck.converter import check_same_converter
    from ..nn.actors import trained_for
    check_same_converter(trained_for(actor), conv, "the network", getattr(args, "allow_other_converter", False))


def add_simulator(p: argparse.ArgumentParser, step_help: str = STEP_HELP) -> None:
    p.add_argument("--simulator", default=None, help=SIM_HELP)
    p.add_argument("--max-step", type=float, default=None, help=step_help)


def add_dask(p: argparse.ArgumentParser, jobs_help: str = "local Dask workers when no --scheduler is given "
             "(default 2)") -> None:
    p.add_argument("--jobs", type=int, default=2, help=jobs_help)
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (tcp:// or "
                   "tls://HOST:PORT), else $BUCKBI_DASK_SCHEDULER, else a local cluster of --jobs workers")
    p.add_argument("--dashboard", action="store_true",
                   help="with a local cluster: serve Dask's dashboard on 127.0.0.1 (a free port; off by default: "
                        "the local cluster listens on loopback only)")


def add_thresholds(p: argparse.ArgumentParser, transient: bool = True, loop_gain: bool = True) -> None:
    """The thresholds a command's verdict is against (evaluate, sweep, fra)."""
    from ..evaluation.thresholds import add_threshold_options
    add_threshold_options(p.add_argument, transient=transient, loop_gain=loop_gain)


def thresholds(args: argparse.Namespace):
    """The Thresholds the command's options set (those a command lacks keep their defaults)."""
    from ..evaluation.thresholds import from_options
    return from_options(lambda dest: getattr(args, dest, None))


def resolve(args: argparse.Namespace):
    """The network under test from --actor/--netlist (with --arch, --trust-pickle)."""
    from ..nn.actors import resolve_actor
    return resolve_actor(args.actor, args.netlist, arch=getattr(args, "arch", None),
                         trust_pickle=getattr(args, "trust_pickle", False))


def check_simulator(name: str | None) -> None:
    """Fail before anything is written when the chosen SPICE simulator is missing (pwl needs none)."""
    from ..engines import engine_for
    engine_for(name).ensure_available()


def verdict(command: str, misses: list[str], total: int, what: str, unit: str = "points") -> int:
    """Print the command's verdict line and return its exit code (0 pass, 1 the network misses)."""
    if misses:
        for line in misses:
            print(f"FAIL {line}", file=sys.stderr)
        print(f"verdict: FAIL: the NN misses {what} at {len(misses)} of {total} {unit}")
        return EXIT_FAIL
    print(f"verdict: PASS: the NN meets {what} at all {total} {unit}")
    return EXIT_PASS
