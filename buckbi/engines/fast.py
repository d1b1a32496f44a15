"""The fast engine: episodes on the exact event-driven simulator (``buckbi.pwl``), the same Episodes as SPICE."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from torch import nn

from ..contract import Episode, EpisodeError
from ..converters.buck.scenarios import check_length, get_scenario
from ..converters.buck.spec import IO, get_gym
from ..episodes.sampling import EXTREMES
from ..pwl.simulate import actor_on_rows, require_pytorch_actor, rows_frame, simulate, simulate_batch
from .base import Engine
from .spice import per_episode, write_episode_files

WAVE_POINTS = 20  # waveform points per period, as SPICE's results are read (the .tran step T/20)


class FastEngine(Engine):
    """The gyms on the fast simulator; it ignores parallel, timeout, max_step and the NN element.

    ``artefacts=True`` (default) writes the exported actor and parameter file of each episode as SPICE would
    (the trainer keeps them); False skips that work for batches nobody keeps files of.
    """

    name = "pwl"
    fast = True

    def __init__(self, artefacts: bool = True):
        self.artefacts = artefacts

    def ensure_available(self) -> None:
        """Nothing to install: numba and numpy come with buckbi."""

    def require_runnable(self, actor) -> None:
        require_pytorch_actor(actor)

    def run(self, gym: str, actor, params: list, workdir: str | Path, *, scenario: str = "startup",
            parallel: int | None = None, timeout: float = 900.0, keep_waveforms: bool = False,
            max_step: float | None = None, nn_in_circuit: bool | None = None,
            nn_element: str | None = None, settings: dict | list[dict] | None = None,
            check: float | None = None) -> list[Episode | Exception]:
        """``keep_waveforms``: the exact solution's V(out) (and V(vsense)) on the T/20 grid SPICE is read on."""
        g, s = get_gym(gym), get_scenario(scenario)
        s.check_gym(gym)
        if g.network and actor is None:
            raise EpisodeError(f"{gym} runs the NN: pass an actor (a 19-input, 1-output nn.Sequential)")
        self.require_runnable(actor)
        out: list[Episode | Exception] = []
        for k, (p, st) in enumerate(zip(params, per_episode(settings, len(params)))):
            st = s.resolve_settings(st)
            check_length(p, s, st)
            files = (write_episode_files(gym, actor, p, workdir, name=f"ep{k}", settings=st, injects=s.injects)
                     if self.artefacts and (actor is None or isinstance(actor, nn.Module)) else {})
            try:
                out.append(self.episode(gym, actor, p, s.name, check, files, st, keep_waveforms))
            except ArithmeticError as err:  # a mode the modal form cannot take: this episode only
                out.append(err)
        return out

    @staticmethod
    def episode(gym: str, actor, params, scenario: str = "startup", check: float | None = None,
                artefacts: dict | None = None, settings: dict | None = None,
                keep_waveforms: bool = False) -> Episode:
        """One episode; in gym 1 (network outside the loop) NNout1 is the actor on the held inputs."""
        start = time.perf_counter()
        result = simulate(gym, actor, params, scenario, check, settings, WAVE_POINTS if keep_waveforms else 0)
        return _episode(gym, actor, params, scenario, settings, keep_waveforms, result, time.perf_counter() - start,
                        artefacts)

    @staticmethod
    def episode_batch(gym: str, actor, params: list, scenario: str = "startup", settings: dict | None = None,
                      keep_waveforms: bool = False) -> list[Episode]:
        """Episodes of one network and scenario at many points or tolerance draws, in one kernel call (numba
        threads over the batch) and without SPICE files; each equals its ``episode``."""
        s = get_scenario(scenario)
        s.check_gym(gym)
        st = s.resolve_settings(settings)
        for p in params:
            check_length(p, s, st)
        start = time.perf_counter()
        results = simulate_batch(gym, actor, params, scenario, None, st, WAVE_POINTS if keep_waveforms else 0)
        each = (time.perf_counter() - start) / max(1, len(params))
        return [_episode(gym, actor, p, scenario, st, keep_waveforms, r, each) for p, r in zip(params, results)]


def _episode(gym: str, actor, params, scenario: str, settings: dict | None, keep_waveforms: bool, result: tuple,
             elapsed: float, artefacts: dict | None = None) -> Episode:
    """The kernel's rows, waveform and extremes as the Episode SPICE would give."""
    g = get_gym(gym)
    kernel_rows, wave, ext = result
    rows = rows_frame(gym, kernel_rows)
    waveforms = None
    if keep_waveforms:
        waveforms = pd.DataFrame(wave, columns=["time", IO.column(IO.vout), IO.column(IO.sense)])
        rows[list(EXTREMES)] = ext  # exact: at every switching instant (buckbi.pwl.kernel)
    if g.network and g.command == "teacher":
        rows[IO.column(IO.output)] = actor_on_rows(actor, rows[IO.input_columns].to_numpy())
    return Episode.from_rows(IO, gym, params, rows, elapsed, network=g.network, labelled=g.labelled,
                             scenario=scenario, artefacts=artefacts, waveforms=waveforms,
                             settings=get_scenario(scenario).resolve_settings(settings))
