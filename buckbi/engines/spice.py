"""The SPICE engine: a gym's circuit plus the scenario's parts, a per-episode parameter file, a run, sampled rows."""
from __future__ import annotations

import math
import os
import weakref
from pathlib import Path

from torch import nn

from ..contract import Episode, EpisodeError
from ..converters.buck.circuits import circuit_file, part_file
from ..converters.buck.scenarios import check_length, get_scenario
from ..converters.buck.spec import IO, SUBCKT, EpisodeParams, get_gym
from ..export import WidthMismatchError, export_model
from ..export.graph import has_state, lower
from ..util.fsutil import atomic_write_text
from ..nn.netlist_actor import NetlistActor
from ..episodes.nn_rows import rows_job
from ..episodes.sampling import EXTREMES, period_extremes, sample_on_clock
from ..sim import Backend, NgspiceBackend, SimJob, SimResult, run_netlists
from .base import Engine

NN_ELEMENTS = ("xspice", "subckt")
ENV_NN_ELEMENT = "BUCKBI_NN_ELEMENT"
INSTANCE = IO.instance(SUBCKT)


def per_episode(settings: dict | list[dict] | None, n: int) -> list[dict | None]:
    """Scenario settings for each of ``n`` episodes: one dict for all, or a list of one per episode."""
    if isinstance(settings, (list, tuple)):
        if len(settings) != n:
            raise EpisodeError(f"settings: {len(settings)} given for {n} episodes")
        return list(settings)
    return [settings] * n


def episode_files(workdir: str | Path, name: str) -> tuple[Path, Path]:
    """Where an episode's exported actor and its parameter file are written."""
    workdir = Path(workdir)
    return workdir / f"{name}_actor.sp", workdir / f"{name}_param.txt"


def batch_name(k: int) -> str:
    """The name the k-th episode of a batch runs under."""
    return f"ep{k}"


def saved_traces(gym: str, nn_in_circuit: bool = True, injects: bool = False) -> list[str]:
    """What an episode of ``gym`` saves: the clock, the 19 inputs, the label and the NN output, Vout, duty (and the
    sensed Vout, vsense, when the scenario injects into it)."""
    g = get_gym(gym)
    traces = [f"V({IO.clock})", f"V({IO.vout})", f"V({IO.duty})"] + ([f"V({IO.sense})"] if injects else [])
    if g.network:
        traces += [f"V({n})" for n in IO.inputs] + ([f"V({IO.output})"] if nn_in_circuit else [])
    if g.labelled:
        traces += [f"V({IO.label})", f"V({IO.teacher_duty})"]
    return traces


def param_file_text(params: EpisodeParams, nn_file: str | Path | None, gym: str, max_step: float | None = None,
                    nn_in_circuit: bool = True, settings: dict[str, float] | None = None,
                    injects: bool = False, clocked: bool = False) -> str:
    """The seed's ``generate_param_file``: .param lines, the NN include and instance, and a .save.

    ``maxstep`` is the transient's largest time step (default T/20, the grid the traces are read on).
    ``nn_in_circuit=False`` (gym 1 only): no NN instance; its outputs come from ``buckbi.episodes.nn_rows`` afterwards.
    ``settings``: the scenario's .param values (e.g. the injection's finj, ainj). ``clocked``: a recurrent network,
    instantiated with ctrlclk as its CLK (the reference's GRU gym: X99 NNin1 ... ctrlclk NNout1).
    """
    lines = [f".param {k}={v!r}" for k, v in (params.spice_params() | dict(settings or {})).items()]
    lines.append(f".param maxstep={max_step if max_step is not None else 1 / (20 * params.fsw)!r}")
    lines += deployment_lines(params, gym)
    if nn_file is not None and nn_in_circuit:
        lines += [f'.include "{Path(nn_file).resolve()}"', IO.instance(SUBCKT, clocked)]
    lines.append(".save " + " ".join(saved_traces(gym, nn_in_circuit, injects or bool(params.noise_mV))))
    return "\n".join(lines) + "\n"


def noise_sense_text(params: EpisodeParams) -> str:
    """The sense part with the sensor's noise: a staircase in series with V(out), value noise[k] from T/2 before the
    k-th sampling instant to T/2 after it (10 ns steps, mid-way between two samples: as the fast kernel holds it).
    It starts from 0 V and steps to noise[0] 10 ns in: SPICE's operating point at t = 0 would otherwise read the
    first value as a DC error and wind the teacher's integrator to a rail before the run begins, where the fast
    kernel starts every state at zero."""
    from ..pwl.simulate import circuit
    per = 1 / params.fsw
    step = circuit(params).t_ctrl + per / 2  # where period k's noise gives way to period k+1's
    n = params.noise_volts()
    n = [float(v) for v in n]
    pts = ["0 0.0", f"{10e-9!r} {n[0]!r}"]
    for k in range(len(n) - 1):
        t = k * per + step
        pts += [f"{t!r} {n[k]!r}", f"{t + 10e-9!r} {n[k + 1]!r}"]
    lines = [" ".join(pts[i:i + 8]) for i in range(0, len(pts), 8)]
    return ("* buckbi sense with sensor noise (noise_mV, noise_seed): V(vsense) = V(out) + noise, one value per period\n"
            f"Vsense vsense out PWL({lines[0]}\n" + "".join(f"+ {ln}\n" for ln in lines[1:]) + "+ )\n")


def _holds_state(actor) -> bool | None:
    """Whether a PyTorch actor has a recurrent cell; None when it is not one or the exporter rejects it (export_model
    says why, later)."""
    if not isinstance(actor, nn.Module):
        return None
    try:
        return has_state(lower(actor, IO.n_inputs)[0])
    except Exception:
        return None


def is_recurrent(actor) -> bool:
    """True for a PyTorch actor with a recurrent cell (its subcircuit takes the clock; it runs in the circuit)."""
    return _holds_state(actor) is True


def deployment_lines(params: EpisodeParams, gym: str) -> list[str]:
    """The deployment in the circuit: buckbi_adc(), the ADC nninputs.inc applies to the sensed Vout and vin (the
    identity for an ideal one); the teacher's feedback tfb, V(vsense)/vmax or behind the ADC its quantised sample held
    on ctrlclk (as the NN's); and the node nncmd gym 2 and deploy take the duty command from: NNout1 itself, or
    NNout1 through delay_periods holds on ctrlclk (each shifts it by one control period)."""
    levels = params.adc_levels
    lines = [f".func buckbi_adc(x) {{floor(x*{levels}+0.5)/{levels}}}" if levels else ".func buckbi_adc(x) {x}"]
    g = get_gym(gym)
    if g.command == "teacher" or g.labelled:  # the teacher's feedback tfb (teacher.inc): behind the same ADC
        lines += (["Btadc tadc 0 V=buckbi_adc(V(vsense)/{vmax})", f"XTADC tadc tfb {IO.clock} BUCKBI_SH"] if levels
                  else ["Btfb tfb 0 V=V(vsense)/{vmax}"])
    if g.command == "teacher":
        return lines
    if not params.delay_periods:
        return lines + [f"Enncmd nncmd 0 {IO.output} 0 1"]
    nodes = [IO.output] + [f"nndel{k}" for k in range(1, params.delay_periods + 1)]
    lines += [f"XDEL{k} {a} {b} {IO.clock} BUCKBI_SH" for k, (a, b) in enumerate(zip(nodes, nodes[1:]), 1)]
    return lines + [f"Enncmd nncmd 0 {nodes[-1]} 0 1"]


def choose_nn_element(actor, backend: Backend | None, nn_in_circuit: bool = True, choice: str | None = None) -> str:
    """How the network runs in the circuit: "xspice" (buckbi's code model) or "subckt" (the portable export).

    A feed-forward PyTorch actor in an ngspice circuit (ngspice dialect) runs as the code model when it is
    built, otherwise, with a warning, as the subcircuit; everything else (netlist actors, recurrent cells,
    LTspice and ngspice's LTspice mode, gym 1's rows) runs as the subcircuit. ``choice`` (or
    $BUCKBI_NN_ELEMENT): "subckt" always the subcircuit; "xspice" insists on the code model where it applies
    (an error instead of the fallback when it is not built).
    """
    choice = choice or os.environ.get(ENV_NN_ELEMENT) or None
    if choice is not None and choice not in NN_ELEMENTS:
        raise EpisodeError(f"nn_element must be one of {NN_ELEMENTS} (or unset for automatic), got {choice!r}")
    eligible = (isinstance(actor, nn.Module) and nn_in_circuit and isinstance(backend, NgspiceBackend)
                and backend.netlist_dialect == "ngspice" and _holds_state(actor) is False)
    if choice == "subckt" or not eligible:
        return "subckt"
    from ..xspice import codemodel_path, require_codemodel, warn_unavailable
    if choice == "xspice":
        require_codemodel(backend.executable)
    elif (path := codemodel_path(backend.executable)) is None or any(c.isspace() for c in str(path)):
        warn_unavailable()  # (ngspice's pre_codemodel cannot take a path with spaces)
        return "subckt"
    return "xspice"


_EXPORTED: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def exported_text(actor: nn.Module, dialect: str, structure: str, codemodel=None) -> str:
    """The actor's subcircuit text, exported once per state of its weights: episodes of an unchanged actor (a
    batch, an evaluation, a plan) reuse it. The key is each parameter's and buffer's identity and PyTorch's version
    counter, which every in-place change (an optimiser step, load_state_dict) moves, and the module's repr (its
    layers' settings)."""
    tensors = [*actor.parameters(), *actor.buffers()]
    key = (tuple((id(t), t._version) for t in tensors), repr(actor), dialect, structure, str(codemodel))
    hit = _EXPORTED.get(actor)
    if hit is not None and hit[0] == key:
        return hit[1]
    text = export_model(actor, None, subckt_name=SUBCKT, dialect=dialect, structure=structure,
                        input_names=list(IO.inputs), output_names=[IO.output], codemodel=codemodel)
    _EXPORTED[actor] = (key, text)
    return text


def write_episode_files(gym: str, actor, params: EpisodeParams, workdir: str | Path, backend: Backend | None = None,
                        name: str = "episode", max_step: float | None = None, nn_in_circuit: bool = True,
                        element: str = "subckt", settings: dict[str, float] | None = None,
                        injects: bool = False) -> dict[str, Path]:
    """Export the actor (or copy its netlist) and write the parameter file; returns {"nn": ..., "params": ...}."""
    g = get_gym(gym)
    if g.network and actor is None:
        raise EpisodeError(f"{gym} runs the NN: pass an actor (a 19-input, 1-output nn.Sequential or a "
                           "NetlistActor)")
    if not nn_in_circuit and gym != "gym1":
        raise EpisodeError(f"only gym 1 can run its network outside the circuit (it only observes it), not {gym}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nn_file, param_file = episode_files(workdir, name)
    if not g.network:
        nn_file = None
    elif isinstance(actor, NetlistActor):
        actor.write(nn_file)
    else:
        dialect = backend.netlist_dialect if backend is not None else "ngspice"
        codemodel = None
        if element == "xspice":
            from ..xspice import require_codemodel
            codemodel = require_codemodel(getattr(backend, "executable", None))
        try:
            atomic_write_text(nn_file, exported_text(actor, dialect, "xspice" if element == "xspice" else "fast",
                                                     codemodel))
        except WidthMismatchError as err:
            raise EpisodeError(f"{gym} feeds the actor {IO.n_inputs} inputs (NNin1..NNin19) and reads one output "
                               f"(NNout1), which this actor does not fit: {err}") from err
    clocked = g.network and is_recurrent(actor)
    atomic_write_text(param_file, param_file_text(params, nn_file, gym, max_step, nn_in_circuit, settings, injects,
                                                  clocked))
    return {"params": param_file} | ({"nn": nn_file} if nn_file is not None else {})


def prepare_episode(gym: str, actor, params: EpisodeParams, workdir: str | Path, backend: Backend | None = None,
                    name: str = "episode", scenario: str = "startup", max_step: float | None = None,
                    nn_in_circuit: bool = True, element: str = "subckt",
                    settings: dict[str, float] | None = None) -> SimJob:
    """Write the episode's files and return the job: the gym's circuit with the parameter file and the scenario's
    parts (load, input source, reference profile) included."""
    s = get_scenario(scenario)
    get_gym(gym)
    s.check_gym(gym)
    check_length(params, s, settings)
    files = write_episode_files(gym, actor, params, workdir, backend, name, max_step, nn_in_circuit, element,
                                s.resolve_settings(settings), s.injects)
    parts = [part_file(p) for p in s.parts]
    if params.noise_mV:
        if s.injects:
            raise EpisodeError("sensor noise and the loop-gain injection share the sense source: measure the loop gain "
                               "without noise_mV")
        parts[-1] = Path(workdir) / f"{name}_sense.inc"
        atomic_write_text(parts[-1], noise_sense_text(params))
    return SimJob(circuit_file(gym), includes=[files["params"], *parts],
                  traces=saved_traces(gym, nn_in_circuit, s.injects or bool(params.noise_mV)), name=f"{name}_{gym}",
                  resample=True)


def collect_episode(gym: str, params: EpisodeParams, result: SimResult, keep_waveforms: bool = False,
                    scenario: str = "startup", artefacts: dict | None = None,
                    settings: dict | None = None) -> Episode:
    """Sample a finished run on the falling edges of ctrlclk and drop the last row, as the seed does."""
    g = get_gym(gym)
    rows = sample_on_clock(result.data, clk=IO.column(IO.clock)).iloc[:-1].reset_index(drop=True)
    if keep_waveforms:  # V(out)'s extremes per period, from every computed point (the ripple's peaks)
        native = result.native if result.native is not None else result.data
        vout = IO.column(IO.vout)
        ext = period_extremes(native["time"].to_numpy(), native[vout].to_numpy(), rows["time"].to_numpy(),
                              1 / params.fsw)
        rows[list(EXTREMES)] = ext
    return Episode.from_rows(IO, gym, params, rows, result.elapsed_s, network=g.network, labelled=g.labelled,
                             scenario=scenario, waveforms=result.data if keep_waveforms else None,
                             artefacts=artefacts, settings=get_scenario(scenario).resolve_settings(settings))


class SpiceEngine(Engine):
    """Episodes in a SPICE simulator (``Backend``: ngspice by default, LTspice when a user has it)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.name = backend.name

    def ensure_available(self) -> None:
        self.backend.ensure_available()

    def run(self, gym: str, actor, params: list, workdir: str | Path, *, scenario: str = "startup",
            parallel: int | None = None, timeout: float = 900.0, keep_waveforms: bool = False,
            max_step: float | None = None, nn_in_circuit: bool | None = None,
            nn_element: str | None = None, settings: dict | list[dict] | None = None) -> list[Episode | Exception]:
        """``nn_in_circuit``: in gym 1 on ngspice the network is by default left out of the loop's run and evaluated
        on the sampled rows in a second run (buckbi.episodes.nn_rows), 3-4x faster for the same rows; True keeps it in the
        circuit (the seed's form, and LTspice's). ``nn_element``: see ``choose_nn_element``."""
        if max_step is not None and not (math.isfinite(max_step) and max_step > 0):
            raise EpisodeError(f"max_step must be a positive number of seconds, got {max_step!r}")
        g = get_gym(gym)
        backend = self.backend
        if isinstance(actor, NetlistActor) and g.network:
            backend = actor.backend_for(backend)
        if nn_in_circuit is None:  # (a recurrent network's rows are a sequence: it stays in the circuit)
            nn_in_circuit = not (gym == "gym1" and isinstance(backend, NgspiceBackend)) or is_recurrent(actor)
        element = choose_nn_element(actor, backend, nn_in_circuit, nn_element) if g.network else "subckt"
        jobs = [prepare_episode(gym, actor, p, workdir, backend, name=batch_name(k), scenario=scenario,
                                max_step=max_step, nn_in_circuit=nn_in_circuit, element=element, settings=st)
                for k, (p, st) in enumerate(zip(params, per_episode(settings, len(params))))]
        if keep_waveforms:
            for job in jobs:
                job.native = [f"V({IO.vout})"]
        results = run_netlists(jobs, workdir, simulator=backend, timeout=timeout, parallel=parallel)
        episodes: list[Episode | Exception] = []
        for k, (p, res, st) in enumerate(zip(params, results, per_episode(settings, len(params)))):
            if isinstance(res, Exception):
                episodes.append(res)
                continue
            nn_file, param_file = episode_files(workdir, batch_name(k))
            files = {"params": param_file} | ({"nn": nn_file} if g.network else {})
            try:
                episodes.append(collect_episode(gym, p, res, keep_waveforms, scenario, files, st))
            except Exception as err:  # a sampling error belongs to this episode only
                episodes.append(err)
        if not nn_in_circuit:
            self._nn_on_rows(episodes, workdir, backend, timeout, parallel)
        return episodes

    @staticmethod
    def _nn_on_rows(episodes: list, workdir: str | Path, backend: Backend, timeout: float,
                    parallel: int | None) -> None:
        """Fill NNout1 of gym-1 episodes run without the network: the exported network on their sampled rows."""
        todo = [(k, ep) for k, ep in enumerate(episodes) if isinstance(ep, Episode)]
        jobs = [rows_job(episode_files(workdir, batch_name(k))[0], ep.x, list(IO.inputs), IO.output, SUBCKT,
                         f"ep{k}_nnrows") for k, ep in todo]
        out_col, label_col = IO.column(IO.output), IO.column(IO.label)
        for (k, ep), res in zip(todo, run_netlists(jobs, workdir, simulator=backend, timeout=timeout,
                                                   parallel=parallel)):
            if isinstance(res, Exception):
                episodes[k] = res
                continue
            ep.pred = res.data[out_col].to_numpy()
            ep.rows.insert(ep.rows.columns.get_loc(label_col), out_col, ep.pred)  # where the seed's form has it
            ep.elapsed_s += res.elapsed_s
