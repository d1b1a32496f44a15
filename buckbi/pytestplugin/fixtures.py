"""Fixtures of the buckbi pytest plugin: simulator, actor, episode runner, golden networks, training run."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

from ..nn.actors import resolve_actor
from ..nn.checkpoint import seed_actor
from ..contract import Episode
from ..converters.buck.spec import EpisodeParams
from ..engines import is_fast
from ..episodes.run import Actor, run_episode
from ..evaluation.thresholds import Thresholds, from_options
from ..sim import Backend, get_simulator
from .golden import GoldenNetwork
from .hooks import session_converter, simulator_key, trainer_key

__all__ = ["simulator", "codemodel", "episode_simulator", "update_golden", "actor", "controller", "converter",
           "regulation_thresholds", "episode_params",
           "episode_runner", "golden_network", "training_run", "DEFAULT_STEPS"]

DEFAULT_STEPS = 256


def _episode_choice(config: pytest.Config) -> str | None:
    """The --buckbi-simulator choice when it names the fast engine (episode checks run there), else None."""
    choice = config.getoption("--buckbi-simulator")
    return choice if is_fast(choice) else None


@pytest.fixture(scope="session")
def simulator(pytestconfig: pytest.Config) -> Backend:
    """The SPICE backend for this session; skips with install instructions when none is found."""
    if simulator_key not in pytestconfig.stash:
        try:
            choice = None if _episode_choice(pytestconfig) else pytestconfig.getoption("--buckbi-simulator")
            backend = get_simulator(choice)
        except ValueError as err:
            pytest.skip(str(err))
        pytestconfig.stash[simulator_key] = backend
    backend = pytestconfig.stash[simulator_key]
    if not backend.is_available():
        pytest.skip(f"no SPICE simulator: {backend.name} not found. {backend.install_hint()}")
    return backend


@pytest.fixture(scope="session")
def codemodel(simulator: Backend) -> Path:
    """buckbi's built XSPICE code model for the session's ngspice; skips saying how to build it."""
    from ..sim import NgspiceBackend
    from ..xspice import BUILD_HINT, codemodel_path
    if not isinstance(simulator, NgspiceBackend):
        pytest.skip(f"the XSPICE network element is an ngspice code model; the simulator is {simulator.name}")
    path = codemodel_path(simulator.executable)
    if path is None:
        pytest.skip(f"buckbi's XSPICE code model is not built: {BUILD_HINT}")
    return path


@pytest.fixture(scope="session")
def episode_simulator(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Backend | str:
    """What runs episodes in the checks: "pwl" with --buckbi-simulator pwl, else the SPICE backend (skips without one)."""
    fast = _episode_choice(pytestconfig)
    return fast if fast else request.getfixturevalue("simulator")


@pytest.fixture(scope="session")
def update_golden(pytestconfig: pytest.Config) -> bool:
    """True when the run was asked to rewrite golden files (--buckbi-update-golden)."""
    return bool(pytestconfig.getoption("--buckbi-update-golden"))


def _network_options(config: pytest.Config) -> dict:
    """--buckbi-arch and --buckbi-trust-pickle: how --buckbi-actor is read."""
    return {"arch": config.getoption("--buckbi-arch"), "trust_pickle": config.getoption("--buckbi-trust-pickle")}


@pytest.fixture(scope="session")
def actor(pytestconfig: pytest.Config) -> nn.Module:
    """The PyTorch actor under test: ``--buckbi-actor PATH`` (any buckbi or seed checkpoint), else a fresh seeded 19-32-16-1."""
    path = pytestconfig.getoption("--buckbi-actor")
    if path:
        model = resolve_actor(path, **_network_options(pytestconfig))
        if not isinstance(model, nn.Module):
            pytest.skip(f"--buckbi-actor {path} is a subcircuit without a PyTorch model: SPICE-vs-PyTorch checks need a "
                        "checkpoint (--buckbi-actor CHECKPOINT)")
    elif pytestconfig.getoption("--buckbi-netlist"):
        pytest.skip("--buckbi-netlist gives a subcircuit without a PyTorch model: SPICE-vs-PyTorch checks need "
                    "--buckbi-actor CHECKPOINT")
    else:
        torch.manual_seed(20250629)
        model = seed_actor()
    return model.double().eval()


@pytest.fixture(scope="session")
def converter(pytestconfig: pytest.Config):
    """The buck the checks run: --buckbi-converter FILE (a converter file), else the reference buck."""
    return session_converter(pytestconfig)


def refuse_other_converter(config: pytest.Config, network: Actor, conv) -> None:
    """Fail (not skip) where the network was trained for another converter, unless --buckbi-allow-other-converter."""
    from ..converters.buck.converter import check_same_converter
    from ..nn.actors import trained_for
    try:
        check_same_converter(trained_for(network), conv, "the network under test",
                             config.getoption("--buckbi-allow-other-converter"), flag="--buckbi-allow-other-converter")
    except ValueError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def controller(pytestconfig: pytest.Config) -> Actor:
    """The network under the regulation check: ``--buckbi-netlist FILE``, else ``--buckbi-actor``, else the published
    actor (each check refuses one trained for another converter than the one it runs: ``refuse_other_converter``)."""
    netlist, path = pytestconfig.getoption("--buckbi-netlist"), pytestconfig.getoption("--buckbi-actor")
    if netlist:
        return resolve_actor(netlist=netlist)
    model = resolve_actor(path or "published", **_network_options(pytestconfig))
    return model.double() if isinstance(model, nn.Module) else model


@pytest.fixture(scope="session")
def regulation_thresholds(pytestconfig: pytest.Config) -> Thresholds:
    """The regulation check's limits (--buckbi-max-sse, --buckbi-max-overshoot, --buckbi-max-step-deviation, --buckbi-max-recovery; the loop
    gain's --buckbi-min-phase-margin, --buckbi-min-gain-margin)."""
    return from_options(lambda dest: pytestconfig.getoption(dest), prefix="buckbi-")


@pytest.fixture(scope="session")
def episode_params(pytestconfig: pytest.Config, converter) -> EpisodeParams:
    """A fixed operating point of --buckbi-steps periods: the converter's nominal one (the reference buck's: vin 200 V,
    ro 20 Ohm, Lo 50 uH, vref 100 V)."""
    return converter.params(**converter.nominal, steps=pytestconfig.getoption("--buckbi-steps") or DEFAULT_STEPS)


@pytest.fixture(scope="session")
def episode_runner(episode_simulator: Backend | str, tmp_path_factory: pytest.TempPathFactory,
                   episode_params: EpisodeParams) -> Callable[..., Episode]:
    """Factory: ``run(gym, actor, params=None, keep_waveforms=False)`` runs one SPICE episode, cached per input."""
    cache: dict[tuple, Episode] = {}

    def run(gym: str, model: nn.Module | None, params: EpisodeParams | None = None, *,
            keep_waveforms: bool = False) -> Episode:
        params = params or episode_params
        if keep_waveforms and is_fast(episode_simulator):
            pytest.skip("waveforms between the sampled rows come from SPICE only; run without --buckbi-simulator pwl")
        key = (gym, id(model), params, keep_waveforms)
        if key not in cache:
            workdir = tmp_path_factory.mktemp(f"episode_{gym}")
            cache[key] = run_episode(gym, model, params, workdir, episode_simulator, keep_waveforms=keep_waveforms)
        return cache[key]

    return run


@pytest.fixture
def golden_network(request: pytest.FixtureRequest) -> GoldenNetwork:
    """One golden network folder (parametrized over --buckbi-golden-dir / tests/golden/networks)."""
    return GoldenNetwork(Path(request.param))


@pytest.fixture(scope="session")
def training_run(pytestconfig: pytest.Config, episode_simulator: Backend | str, converter):
    """The training-as-test run: a Trainer in --buckbi-train-dir (emptied first), shared by the episode tests."""
    if trainer_key not in pytestconfig.stash:
        from ..train import TrainConfig, Trainer
        root = Path(pytestconfig.getoption("--buckbi-train-dir"))
        if not root.is_absolute():
            root = pytestconfig.rootpath / root
        shutil.rmtree(root, ignore_errors=True)  # a test run's scratch, not a user's training
        steps = pytestconfig.getoption("--buckbi-steps") or DEFAULT_STEPS
        pytestconfig.stash[trainer_key] = Trainer(TrainConfig(
            workdir=root, schedule=f"gym1:{pytestconfig.getoption('--buckbi-episodes')}", steps=steps, seed=0,
            simulator=episode_simulator, progress=False, converter=converter))
    return pytestconfig.stash[trainer_key]
