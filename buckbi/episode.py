"""One SPICE episode of a gym: parameters, the per-episode parameter file, the run and its sampled data."""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from .export import WidthMismatchError, export_model
from .fsutil import atomic_write_text
from .netlist_actor import NetlistActor
from .sampling import sample_on_clock
from .sim import (FAST, Backend, NgspiceBackend, SimJob, SimResult, get_simulator, run_netlists,
                  simulator_name)

CIRCUITS = Path(__file__).resolve().parents[1] / "circuits"
GYMS = ("teacher", "gym1", "gym2", "deploy")
SCENARIOS = ("startup", "loadstep")
LOADSTEP_GYMS = ("teacher", "deploy")  # the reference's deployment test: a controller alone, no label
LOADSTEP_DURATION = 80e-3  # .tran 80m of BUCK_VM_gym.asc; load steps at 40 and 60 ms
LOADSTEP_TIMES = (40e-3, 60e-3)
Actor = nn.Module | NetlistActor
N_INPUTS = 19
INPUTS = [f"NNin{i}" for i in range(1, N_INPUTS + 1)]
SUBCKT = "ActorSubckt"
INSTANCE = f"X99 {' '.join(INPUTS)} NNout1 {SUBCKT}"


NN_ELEMENTS = ("xspice", "subckt")
ENV_NN_ELEMENT = "BUCKBI_NN_ELEMENT"


class EpisodeError(ValueError):
    """An episode cannot be set up as asked."""


@dataclass(frozen=True)
class EpisodeParams:
    """Operating point and length of one episode (SI units: V, Ohm, H, Hz)."""

    vin: float
    ro: float
    Lo: float
    vref: float
    fsw: float = 50e3
    vmax: float = 250.0
    steps: int = 2048

    def __post_init__(self) -> None:
        for name in ("vin", "ro", "Lo", "vref", "fsw", "vmax"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise EpisodeError(f"EpisodeParams.{name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, float(value))  # numpy scalars too: the parameter file writes repr()
        if not self.vref < self.vin:
            raise EpisodeError(f"vref ({self.vref:g} V) must be below vin ({self.vin:g} V): a buck only steps down")
        if isinstance(self.steps, bool) or not isinstance(self.steps, numbers.Integral) or self.steps < 8:
            raise EpisodeError(f"steps must be an integer >= 8 control periods, got {self.steps!r}")
        object.__setattr__(self, "steps", int(self.steps))

    @classmethod
    def random(cls, rng: np.random.Generator, **fixed) -> "EpisodeParams":
        """Draw the seed's ranges: vin 150-250 V, ro 5-80 Ohm, Lo 20-100 uH, vref 50-150 V (same order)."""
        drawn = {"vin": rng.uniform(150, 250), "ro": rng.uniform(5, 80), "Lo": rng.uniform(20e-6, 100e-6),
                 "vref": rng.uniform(50, 150)}
        return cls(**{k: float(v) for k, v in drawn.items()}, **fixed)

    @property
    def duration(self) -> float:
        """Simulated time: STEPS + 2 control periods, as the seed's ``.tran``."""
        return (self.steps + 2) / self.fsw

    @property
    def vout_vin(self) -> float:
        return self.vref / self.vin

    @property
    def iout_icrit(self) -> float:
        """Load current over the DCM boundary current (the seed's formula, with its L = 200 uH)."""
        icrit = 0.5 * self.vref * (self.vin - self.vref) / self.fsw / 0.0002 / self.vin
        return self.vref / self.ro / icrit

    def spice_params(self) -> dict[str, float | int]:
        d = asdict(self)
        d["STEPS"] = int(d.pop("steps"))
        return d


@dataclass
class Episode:
    """Sampled data of one episode: ``x`` (N x 19), ``y`` teacher label (None in deploy), ``pred`` NNout1."""

    gym: str
    params: EpisodeParams
    x: np.ndarray
    y: np.ndarray | None
    pred: np.ndarray | None
    rows: pd.DataFrame
    elapsed_s: float
    waveforms: pd.DataFrame | None = None


def saved_traces(gym: str, nn_in_circuit: bool = True) -> list[str]:
    """What an episode of ``gym`` saves: the clock, the 19 inputs, the label and the NN output, Vout, duty."""
    traces = ["V(ctrlclk)", "V(out)", "V(duty)"]
    if gym != "teacher":
        traces += [f"V({n})" for n in INPUTS] + (["V(NNout1)"] if nn_in_circuit else [])
    if gym != "deploy":
        traces.append("V(nnpwm)")
    return traces


def loadstep_params(params: EpisodeParams) -> EpisodeParams:
    """The same operating point run for the load-step scenario's 80 ms (3998 periods at 50 kHz)."""
    return replace(params, steps=round(LOADSTEP_DURATION * params.fsw) - 2)


def circuit_file(gym: str, scenario: str = "startup", params: EpisodeParams | None = None) -> Path:
    """The circuit of ``gym`` in ``scenario``; raises EpisodeError for what does not exist."""
    if gym not in GYMS:
        raise EpisodeError(f"unknown gym {gym!r}; choose one of {', '.join(GYMS)}")
    if scenario not in SCENARIOS:
        raise EpisodeError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if scenario == "startup":
        return CIRCUITS / f"{gym}.cir"
    if gym not in LOADSTEP_GYMS:
        raise EpisodeError(f"the load-step scenario runs a controller alone: gym {' or '.join(LOADSTEP_GYMS)}, "
                           f"not {gym}")
    if params is not None and params.duration < LOADSTEP_DURATION - 0.5 / params.fsw:
        raise EpisodeError(f"the load-step scenario needs 80 ms (load steps at 40 and 60 ms), this episode runs "
                           f"{params.duration * 1e3:g} ms: use loadstep_params(params)")
    return CIRCUITS / f"{gym}_loadstep.cir"


def episode_files(workdir: str | Path, name: str) -> tuple[Path, Path]:
    """Where ``prepare_episode`` writes an episode's exported actor and its parameter file."""
    workdir = Path(workdir)
    return workdir / f"{name}_actor.sp", workdir / f"{name}_param.txt"


def batch_name(k: int) -> str:
    """The ``name`` run_episodes gives the k-th episode of a batch."""
    return f"ep{k}"


def param_file_text(params: EpisodeParams, nn_file: str | Path | None, gym: str, max_step: float | None = None,
                    nn_in_circuit: bool = True) -> str:
    """The seed's ``generate_param_file``: .param lines, the NN include and instance, and a .save.

    ``maxstep`` is the transient's largest time step (default T/20, the grid the traces are read on).
    ``nn_in_circuit=False`` (gym 1 only): no NN instance; its outputs come from ``buckbi.nn_rows`` afterwards.
    """
    lines = [f".param {k}={v!r}" for k, v in params.spice_params().items()]
    lines.append(f".param maxstep={max_step if max_step is not None else 1 / (20 * params.fsw)!r}")
    if nn_file is not None and nn_in_circuit:
        lines += [f'.include "{Path(nn_file).resolve()}"', INSTANCE]
    lines.append(".save " + " ".join(saved_traces(gym, nn_in_circuit)))
    return "\n".join(lines) + "\n"


def choose_nn_element(actor: Actor | None, backend: Backend | None, nn_in_circuit: bool = True,
                      choice: str | None = None) -> str:
    """How the network runs in the circuit: "xspice" (buckbi's code model) or "subckt" (the portable export).

    A feed-forward PyTorch actor in an ngspice circuit (ngspice dialect) runs as the code model when it is
    built, otherwise, with a warning, as the subcircuit; everything else (netlist actors, recurrent cells,
    LTspice and ngspice's LTspice mode, gym 1's rows) runs as the subcircuit. ``choice`` (or
    $BUCKBI_NN_ELEMENT): "subckt" always the subcircuit; "xspice" insists on the code model where it applies
    (an error instead of the fallback when it is not built).
    """
    from .export.graph import has_state, lower
    choice = choice or os.environ.get(ENV_NN_ELEMENT) or None
    if choice is not None and choice not in NN_ELEMENTS:
        raise EpisodeError(f"nn_element must be one of {NN_ELEMENTS} (or unset for automatic), got {choice!r}")
    eligible = (isinstance(actor, nn.Module) and nn_in_circuit and isinstance(backend, NgspiceBackend)
                and backend.netlist_dialect == "ngspice")
    if eligible:
        try:
            eligible = not has_state(lower(actor, N_INPUTS)[0])
        except Exception:  # an actor the exporter rejects: export_model says why, later
            eligible = False
    if choice == "subckt" or not eligible:
        return "subckt"
    from .xspice import codemodel_path, require_codemodel, warn_unavailable
    if choice == "xspice":
        require_codemodel(backend.executable)
    elif (path := codemodel_path(backend.executable)) is None or any(c.isspace() for c in str(path)):
        warn_unavailable()  # (ngspice's pre_codemodel cannot take a path with spaces)
        return "subckt"
    return "xspice"


def prepare_episode(gym: str, actor: Actor | None, params: EpisodeParams, workdir: str | Path,
                    backend: Backend | None = None, name: str = "episode", scenario: str = "startup",
                    max_step: float | None = None, nn_in_circuit: bool = True, element: str = "subckt") -> SimJob:
    """Export the actor (or copy its netlist), write the parameter file and return the job that runs the episode.

    ``element`` (see ``choose_nn_element``): "xspice" exports the network as buckbi's code model element.
    """
    circuit = circuit_file(gym, scenario, params)
    if gym != "teacher" and actor is None:
        raise EpisodeError(f"{gym} runs the NN: pass an actor (a 19-input, 1-output nn.Sequential or a "
                           "NetlistActor)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nn_file, param_file = episode_files(workdir, name)
    if gym == "teacher":
        nn_file = None
    elif isinstance(actor, NetlistActor):
        actor.write(nn_file)
    else:
        dialect = backend.netlist_dialect if backend is not None else "ngspice"
        structure = "xspice" if element == "xspice" else "fast"
        codemodel = None
        if structure == "xspice":
            from .xspice import require_codemodel
            codemodel = require_codemodel(getattr(backend, "executable", None))
        try:
            export_model(actor, nn_file, subckt_name=SUBCKT, dialect=dialect, structure=structure,
                         input_names=INPUTS, output_names=["NNout1"], codemodel=codemodel)
        except WidthMismatchError as err:
            raise EpisodeError(f"{gym} feeds the actor {N_INPUTS} inputs (NNin1..NNin19) and reads one output "
                               f"(NNout1), which this actor does not fit: {err}") from err
    if not nn_in_circuit and gym != "gym1":
        raise EpisodeError(f"only gym 1 can run its network outside the circuit (it only observes it), not {gym}")
    atomic_write_text(param_file, param_file_text(params, nn_file, gym, max_step, nn_in_circuit))
    return SimJob(circuit, includes=[param_file], traces=saved_traces(gym, nn_in_circuit), name=f"{name}_{gym}",
                  resample=True)


def collect_episode(gym: str, params: EpisodeParams, result: SimResult, keep_waveforms: bool = False) -> Episode:
    """Sample a finished run on the falling edges of ctrlclk and drop the last row, as the seed does."""
    rows = sample_on_clock(result.data).iloc[:-1].reset_index(drop=True)
    x = rows[[f"V({n.lower()})" for n in INPUTS]].to_numpy() if gym != "teacher" else np.empty((len(rows), 0))
    y = rows["V(nnpwm)"].to_numpy() if gym != "deploy" else None
    pred = rows["V(nnout1)"].to_numpy() if "V(nnout1)" in rows else None
    return Episode(gym, params, x, y, pred, rows, result.elapsed_s, result.data if keep_waveforms else None)


def run_episodes(gym: str, actor: Actor | None, params: list[EpisodeParams], workdir: str | Path,
                 simulator: str | Backend | None = None, *, parallel: int | None = None,
                 timeout: float = 900.0, keep_waveforms: bool = False,
                 scenario: str = "startup", max_step: float | None = None,
                 nn_in_circuit: bool | None = None, nn_element: str | None = None) -> list[Episode | Exception]:
    """Several episodes with the same actor at once; each entry is an Episode or the error it raised.

    ``simulator``: a SPICE backend (or its name), or "pwl" for the fast exact simulator (buckbi.pwl), which
    ignores ``parallel``, ``timeout``, ``keep_waveforms`` and ``max_step``. ``max_step``: SPICE's largest
    time step in seconds (default T/20). ``nn_in_circuit``: in gym 1 on ngspice the network is by default
    left out of the loop's run and evaluated on the sampled rows in a second run (buckbi.nn_rows), which
    gives the same rows 3-4x faster; True keeps it in the circuit, the seed's form (and LTspice's).
    ``nn_element``: where the network is in an ngspice circuit, "xspice" runs it as buckbi's code model
    (default when built: ~5x faster episodes with the network in the loop), "subckt" as the portable
    exported subcircuit; $BUCKBI_NN_ELEMENT sets it too.
    """
    if max_step is not None and not (math.isfinite(max_step) and max_step > 0):
        raise EpisodeError(f"max_step must be a positive number of seconds, got {max_step!r}")
    if simulator_name(simulator) == FAST:
        return _run_fast(gym, actor, params, scenario, workdir)
    backend = get_simulator(simulator)
    if isinstance(actor, NetlistActor) and gym != "teacher":
        backend = actor.backend_for(backend)
    if nn_in_circuit is None:
        nn_in_circuit = not (gym == "gym1" and isinstance(backend, NgspiceBackend))
    element = choose_nn_element(actor, backend, nn_in_circuit, nn_element) if gym != "teacher" else "subckt"
    jobs = [prepare_episode(gym, actor, p, workdir, backend, name=batch_name(k), scenario=scenario,
                            max_step=max_step, nn_in_circuit=nn_in_circuit, element=element)
            for k, p in enumerate(params)]
    results = run_netlists(jobs, workdir, simulator=backend, timeout=timeout, parallel=parallel)
    episodes: list[Episode | Exception] = []
    for p, res in zip(params, results):
        if isinstance(res, Exception):
            episodes.append(res)
            continue
        try:
            episodes.append(collect_episode(gym, p, res, keep_waveforms))
        except Exception as err:  # a sampling error belongs to this episode only
            episodes.append(err)
    if not nn_in_circuit:
        _nn_on_rows(episodes, workdir, backend, timeout, parallel)
    return episodes


def _nn_on_rows(episodes: list, workdir: str | Path, backend: Backend, timeout: float, parallel: int | None) -> None:
    """Fill NNout1 of gym-1 episodes run without the network: the exported network on their sampled rows."""
    from .nn_rows import rows_job
    todo = [(k, ep) for k, ep in enumerate(episodes) if isinstance(ep, Episode)]
    jobs = [rows_job(episode_files(workdir, batch_name(k))[0], ep.x, INPUTS, "NNout1", SUBCKT, f"ep{k}_nnrows")
            for k, ep in todo]
    for (k, ep), res in zip(todo, run_netlists(jobs, workdir, simulator=backend, timeout=timeout,
                                               parallel=parallel)):
        if isinstance(res, Exception):
            episodes[k] = res
            continue
        ep.pred = res.data["V(nnout1)"].to_numpy()
        ep.rows.insert(ep.rows.columns.get_loc("V(nnpwm)"), "V(nnout1)", ep.pred)  # where the seed's form has it
        ep.elapsed_s += res.elapsed_s


def _run_fast(gym: str, actor: Actor | None, params: list[EpisodeParams], scenario: str,
              workdir: str | Path) -> list:
    """Episodes on the fast simulator; the exported actor and parameter files are written as for SPICE."""
    from .pwl import run_episode_pwl
    out: list[Episode | Exception] = []
    for k, p in enumerate(params):
        if isinstance(actor, nn.Module) or actor is None:
            prepare_episode(gym, actor, p, workdir, name=batch_name(k), scenario=scenario)  # checks, artefacts
        try:
            out.append(run_episode_pwl(gym, actor, p, scenario))
        except ArithmeticError as err:  # a mode the modal form cannot take: this episode only
            out.append(err)
    return out


def run_episode(gym: str, actor: Actor | None, params: EpisodeParams, workdir: str | Path,
                simulator: str | Backend | None = None, *, timeout: float = 900.0,
                keep_waveforms: bool = False, scenario: str = "startup", max_step: float | None = None,
                nn_in_circuit: bool | None = None, nn_element: str | None = None) -> Episode:
    """Run one episode of ``gym`` (SPICE, or "pwl") and return its sampled data; raises on failure."""
    episode = run_episodes(gym, actor, [params], workdir, simulator, parallel=1, timeout=timeout,
                           keep_waveforms=keep_waveforms, scenario=scenario, max_step=max_step,
                           nn_in_circuit=nn_in_circuit, nn_element=nn_element)[0]
    if isinstance(episode, Exception):
        raise episode
    return episode
