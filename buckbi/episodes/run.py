"""Run gym episodes (the public API): ``run_episode(s)`` on whichever engine the simulator choice names.

The contract (``buckbi.contract``), the buck's spec (``buckbi.converters.buck``) and the engines
(``buckbi.engines``) do the work; this module keeps the names users call.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..contract import Episode, EpisodeError
from ..converters.buck.circuits import circuit_file as _gym_circuit
from ..converters.buck.scenarios import SCENARIOS, check_length, get_scenario, scenario_params
from ..converters.buck.spec import GYMS, IO, N_INPUTS, SUBCKT, EpisodeParams, get_gym
from ..engines import engine_for
from ..engines.spice import (ENV_NN_ELEMENT, INSTANCE, NN_ELEMENTS, batch_name, choose_nn_element,
                            collect_episode, episode_files, param_file_text, prepare_episode, saved_traces)
from ..nn.netlist_actor import NetlistActor
from ..sim import Backend

Actor = nn.Module | NetlistActor
INPUTS = list(IO.inputs)
LOADSTEP_TIMES = tuple(t for _, t in SCENARIOS["loadstep"].events_at())

__all__ = ["Actor", "Episode", "EpisodeError", "EpisodeParams", "GYMS", "INPUTS", "N_INPUTS", "SUBCKT", "INSTANCE",
           "SCENARIOS", "ENV_NN_ELEMENT", "NN_ELEMENTS", "run_episode", "run_episodes", "prepare_episode",
           "collect_episode", "choose_nn_element", "param_file_text", "saved_traces", "episode_files", "batch_name",
           "circuit_file", "loadstep_params", "scenario_params"]


def loadstep_params(params: EpisodeParams) -> EpisodeParams:
    """The same operating point run for the load-step scenario's 80 ms (3998 periods at 50 kHz)."""
    return scenario_params(params, "loadstep")


def circuit_file(gym: str, scenario: str = "startup", params: EpisodeParams | None = None) -> Path:
    """The circuit of ``gym`` (the scenario's parts are included beside it); raises EpisodeError for what does not
    exist."""
    get_gym(gym)
    s = get_scenario(scenario)
    s.check_gym(gym)
    if params is not None:
        check_length(params, s)
    return _gym_circuit(gym)


def run_episodes(gym: str, actor: Actor | None, params: list[EpisodeParams], workdir: str | Path,
                 simulator: str | Backend | None = None, *, parallel: int | None = None,
                 timeout: float = 900.0, keep_waveforms: bool = False,
                 scenario: str = "startup", max_step: float | None = None,
                 nn_in_circuit: bool | None = None, nn_element: str | None = None,
                 settings: dict | list[dict] | None = None) -> list[Episode | Exception]:
    """Several episodes with the same actor at once; each entry is an Episode or the error it raised.

    ``simulator``: a SPICE backend (or its name), "pwl" for the fast exact simulator (buckbi.pwl), or an
    ``Engine``. ``max_step``: SPICE's largest time step in seconds (default T/20). ``nn_in_circuit``, ``nn_element``:
    see ``buckbi.engines.SpiceEngine.run`` (the fast engine ignores them, and parallel, timeout, keep_waveforms).
    """
    return engine_for(simulator).run(gym, actor, params, workdir, scenario=scenario, parallel=parallel,
                                     timeout=timeout, keep_waveforms=keep_waveforms, max_step=max_step,
                                     nn_in_circuit=nn_in_circuit, nn_element=nn_element, settings=settings)


def run_episode(gym: str, actor: Actor | None, params: EpisodeParams, workdir: str | Path,
                simulator: str | Backend | None = None, *, timeout: float = 900.0,
                keep_waveforms: bool = False, scenario: str = "startup", max_step: float | None = None,
                nn_in_circuit: bool | None = None, nn_element: str | None = None,
                settings: dict | None = None) -> Episode:
    """Run one episode of ``gym`` (SPICE, or "pwl") and return its sampled data; raises on failure."""
    episode = run_episodes(gym, actor, [params], workdir, simulator, parallel=1, timeout=timeout,
                           keep_waveforms=keep_waveforms, scenario=scenario, max_step=max_step,
                           nn_in_circuit=nn_in_circuit, nn_element=nn_element, settings=settings)[0]
    if isinstance(episode, Exception):
        raise episode
    return episode
