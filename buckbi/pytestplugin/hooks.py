"""Options, markers and collection hooks of the buckbi pytest plugin."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..converters.buck.scenarios import SCENARIOS
from ..evaluation.thresholds import add_threshold_options

MARKERS = {
    "ltspice": "runs a real SPICE simulator (ngspice by default, LTspice when selected)",
    "slow": "long SPICE runs (full-length episodes, training); run with --buckbi-run-slow or -m slow",
    "nightly": "regression of golden exported networks (tests/golden/networks or --buckbi-golden-dir); run with -m nightly",
    "training": "training-as-test: one test per training episode; run with --buckbi-train-as-test",
}

DEFAULT_REGULATION = "startup,loadstep,fra"  # the loop gain asked by default: a barely stable network fails

simulator_key = pytest.StashKey[object]()
trainer_key = pytest.StashKey[object]()
converter_key = pytest.StashKey[object]()

__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "pytest_generate_tests",
           "pytest_html_results_summary",
           "simulator_key", "trainer_key", "converter_key", "session_converter", "MARKERS", "golden_dirs"]


def session_converter(config: pytest.Config):
    """The buck of --buckbi-converter (the reference buck without it), read and designed once per session; a file
    that cannot be read stops the run with the file's problem and its fix."""
    if converter_key not in config.stash:
        from ..converters.buck.converter import ConverterError
        from ..converters.buck.design import load_converter
        try:
            config.stash[converter_key] = load_converter(config.getoption("--buckbi-converter"))
        except ConverterError as err:
            raise pytest.UsageError(f"--buckbi-converter: {err}") from None
    return config.stash[converter_key]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("buckbi", "buckbi SPICE-in-the-loop validation")
    group.addoption("--buckbi-simulator", default=None, choices=("auto", "ngspice", "ltspice", "pwl"),
                    help="SPICE backend for ltspice-marked tests (default: $BUCKBI_SIMULATOR or auto); pwl runs the "
                         "episode checks (episode_runner, regulation, training-as-test) on the fast simulator and "
                         "the rest on the default SPICE backend")
    group.addoption("--buckbi-run-slow", action="store_true", default=False,
                    help="also run tests marked slow (full-length SPICE episodes)")
    group.addoption("--buckbi-actor", default=None, metavar="PATH",
                    help="checkpoint of the actor under test, 'pretrained' (buckbi's), 'seed-pretrained' (buckbi's "
                         "previous) or 'published' (the reference's): the SPICE-vs-PyTorch checks use it (default: a fresh seeded one), and so does the regulation "
                         "check (default: the published actor)")
    group.addoption("--buckbi-arch", default=None, metavar="ARCH",
                    help="the layers of a bare state dict given to --buckbi-actor, e.g. '19-64-64-1:tanh,tanh,sigmoid' "
                         "(as buckbi's --arch)")
    group.addoption("--buckbi-trust-pickle", action="store_true", default=False,
                    help="--buckbi-actor may be a pickled module or TorchScript file (loading it runs its code)")
    group.addoption("--buckbi-netlist", default=None, metavar="FILE",
                    help="a network exported by any tool (.subckt ActorSubckt, 19+1 ports) for the regulation check, "
                         "run as it is; the SPICE-vs-PyTorch checks skip (no PyTorch model)")
    group.addoption("--buckbi-regulation-points", type=int, default=2, metavar="K",
                    help="held-out operating points of the closed-loop regulation check (default 2)")
    group.addoption("--buckbi-regulation-scenarios", default=DEFAULT_REGULATION, metavar="LIST",
                    help="scenarios of the regulation check, comma-separated, from "
                         f"{', '.join(SCENARIOS)} (default {DEFAULT_REGULATION}; fra: the loop gain's margins, "
                         "measured on the fast engine, a netlist imported as its equal PyTorch model)")
    group.addoption("--buckbi-regulation-seed", type=int, default=1, metavar="S",
                    help="seed of the regulation check's held-out draws (default 1, as buckbi evaluate)")
    group.addoption("--buckbi-regulation-steps", type=int, default=1024, metavar="N",
                    help="control periods of the regulation check's start-up runs (default 1024: 20 ms)")
    add_threshold_options(lambda flag, **kw: group.addoption(flag, metavar="LIMIT", **kw), prefix="buckbi-")
    group.addoption("--buckbi-steps", type=int, default=None, metavar="N",
                    help="control periods per SPICE episode in checks and training-as-test (default 256)")
    group.addoption("--buckbi-train-as-test", action="store_true", default=False,
                    help="run training, one test per episode (only the training tests run); artefacts in "
                         "--buckbi-train-dir; add --html=reports/training.html --self-contained-html for the report")
    group.addoption("--buckbi-episodes", type=int, default=3, metavar="N", help="episodes of --buckbi-train-as-test (default 3)")
    group.addoption("--buckbi-train-dir", default="reports/training-run", metavar="DIR",
                    help="training-as-test folder, emptied at the start (default reports/training-run)")
    group.addoption("--buckbi-golden-dir", default=None, metavar="DIR",
                    help="folder of golden networks (one sub-folder with actor.pth each) for -m nightly "
                         "(default: tests/golden/networks)")
    group.addoption("--buckbi-update-golden", action="store_true", default=False,
                    help="rewrite golden files instead of comparing against them")
    group.addoption("--buckbi-converter", default=None, metavar="FILE",
                    help="the buck the checks run (a converter file, TOML, or a shipped name: reference, buck-48v); "
                         "default: the reference buck")
    group.addoption("--buckbi-allow-other-converter", action="store_true", default=False,
                    help="run a network trained for another converter anyway (refused without it)")
    group.addoption("--buckbi-plan", default=None, metavar="PLAN",
                    help="a test plan (TOML, or 'default'): buckbi.checks.test_plan makes one item per test and "
                         "corner (id TEST[CORNER]) for the network under test (--buckbi-actor / --buckbi-netlist), "
                         "run on --buckbi-simulator")
    group.addoption("--buckbi-nn-element", default=None, choices=("xspice", "subckt"),
                    help="how a PyTorch network runs inside ngspice circuits: buckbi's XSPICE element (the default "
                         "where built) or the portable exported subcircuit (sets $BUCKBI_NN_ELEMENT)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--buckbi-train-as-test") and getattr(config.option, "dist", "no") != "no":
        # A training run is one process's: every episode in order, on one trainer. xdist (-n 2, as ./buckbi.sh
        # test adds) would hand episodes to two workers, each with its own trainer in the same folder; run it here.
        config.option.dist, config.option.tx, config.option.numprocesses = "no", [], 0
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if config.getoption("--buckbi-converter", None):
        session_converter(config)  # a file that cannot be read stops the run here, naming its problem
    element = config.getoption("--buckbi-nn-element", None)
    if element:  # read by every episode, in this process and in the ones it starts (xdist, Dask workers)
        from ..engines.spice import ENV_NN_ELEMENT
        os.environ[ENV_NN_ELEMENT] = element


def _selected_by_markexpr(config: pytest.Config, marker: str) -> bool:
    return marker in (config.getoption("markexpr", "") or "")


def golden_dirs(config: pytest.Config) -> list[Path]:
    """Sub-folders holding an ``actor.pth`` under --buckbi-golden-dir (or the project's tests/golden/networks)."""
    root = Path(config.getoption("--buckbi-golden-dir") or config.rootpath / "tests" / "golden" / "networks")
    return sorted(p.parent for p in root.glob("*/actor.pth")) if root.is_dir() else []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    if "training_episode" in metafunc.fixturenames:
        n = config.getoption("--buckbi-episodes") if config.getoption("--buckbi-train-as-test") else 1
        metafunc.parametrize("training_episode", range(1, n + 1), ids=[f"ep{k}" for k in range(1, n + 1)])
    if "regulation_scenario" in metafunc.fixturenames:
        names = [n.strip() for n in config.getoption("--buckbi-regulation-scenarios").split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown or not names:
            raise pytest.UsageError(f"--buckbi-regulation-scenarios: unknown {unknown or 'empty list'}; choose from "
                                    f"{', '.join(SCENARIOS)}")
        metafunc.parametrize("regulation_scenario", names)
    if "plan_line" in metafunc.fixturenames:
        _parametrize_plan(metafunc)
    if "golden_network" in metafunc.fixturenames:
        dirs = golden_dirs(config)
        metafunc.parametrize("golden_network", dirs, ids=[d.name for d in dirs], indirect=True)


def _parametrize_plan(metafunc: pytest.Metafunc) -> None:
    """One item per test and corner of --buckbi-plan (id TEST[CORNER]); without a plan, one skipped item."""
    source = metafunc.config.getoption("--buckbi-plan")
    if not source:
        metafunc.parametrize("plan_line", [pytest.param(None, marks=pytest.mark.skip(
            reason="test plan: give --buckbi-plan PLAN (a TOML file or 'default') and --buckbi-actor PATH or "
                   "--buckbi-netlist FILE"))], ids=["no-plan"])
        return
    from ..testplan import PlanError, load_plan
    try:
        plan = load_plan(source, metafunc.config.getoption("--buckbi-converter"))
    except PlanError as err:
        raise pytest.UsageError(f"--buckbi-plan: {err}") from None
    lines = plan.cells()
    metafunc.parametrize("plan_line", lines, ids=[f"{t.name}[{c.name}]" for t, c in lines])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--buckbi-train-as-test"):
        # A training run is its own session: keep the training items (in episode order), drop the rest.
        keep = [i for i in items if "training" in i.keywords]
        config.hook.pytest_deselected(items=[i for i in items if "training" not in i.keywords])
        items[:] = keep
        return
    run_slow = config.getoption("--buckbi-run-slow") or _selected_by_markexpr(config, "slow")
    run_nightly = _selected_by_markexpr(config, "nightly")
    for item in items:
        if "training" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="training-as-test: enable with --buckbi-train-as-test --buckbi-episodes N"))
        elif "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow SPICE run: enable with --buckbi-run-slow or -m slow"))
        elif "nightly" in item.keywords and not run_nightly:
            item.add_marker(pytest.mark.skip(reason="nightly regression: enable with -m nightly"))


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    """pytest-html: put the training run's loss curve at the top of the report, where it is always visible."""
    trainer = session.config.stash.get(trainer_key, None)
    if trainer is None or not len(trainer.log):
        return
    import importlib.util
    if importlib.util.find_spec("matplotlib") is None:
        return
    from .extras import loss_png
    ok = trainer.log[trainer.log["status"] == "ok"]
    last = f", last loss {ok['loss_actor'].iloc[-1]:.3e}" if len(ok) else ""
    prefix.append(f"<p>Training run in <code>{trainer.dir.root}</code>: {len(trainer.log)} episodes, "
                  f"{len(ok)} ok{last}.</p>"
                  f'<img id="buckbi-loss" alt="loss per episode" src="data:image/png;base64,{loss_png(trainer.log)}">')
