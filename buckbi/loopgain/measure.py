"""Loop gain by injection: one start-up-then-sine episode per frequency, the Fourier components of V(out) and of
the sensed V(vsense) over whole injection periods, T(f) = -V(out)/V(vsense) (Middlebrook)."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import Episode, EpisodeError
from ..converters.buck.spec import IO, EpisodeParams
from ..engines import FastEngine, is_fast
from ..episodes.run import run_episodes
from .result import FraResult  # noqa: F401 (buckbi.loopgain.measure.FraResult, as before)

log = logging.getLogger("buckbi.loopgain")
CONTROLLERS = {"nn": "deploy", "teacher": "teacher"}  # who, and the gym that runs it alone
SETTLE = 10e-3  # s of start-up before the averaging window (the reference's .fra: delay=6m)
SOFT_START_MS = 2.0  # the reference buck's soft start; another converter's comes from its file
SETTLE_PERIODS = 400  # control periods after the soft start before the window (the reference's 10 ms: 2 ms + 8 ms)
SLOW_MODES = 5  # the start-up lasts at least this many time constants of the loop's slowest mode (e^-5: 0.7 % left)
MAX_SETTLE_PERIODS = 12_500  # and at most this many control periods after the soft start (250 ms at 50 kHz)
SETTLED_PERIODS = 100  # the periods before the window in which Vout must be settled (2 ms at 50 kHz)
TAVGMIN = 2e-3  # the window is whole injection periods, at least this long (the reference's tavgmin=2m)
AMPLITUDE = 0.05  # V: small enough to be linear (halving it moves no gain by 0.2 dB below 10 kHz, tested); scaled
# down per frequency where the controller would see more than 3x this (see _sweep)
SPICE_STEP = 400  # SPICE runs at T/400 by default: see measure()
SETTLED_BAND = 0.02  # Vout within 2 % of vref over the 2 ms before the window, else the point is refused
LINEARITY_DB, LINEARITY_DEG = 0.2, 2.0  # --check-linearity: a half-amplitude run differs by more: not linear


class FraError(ValueError):
    """A loop-gain measurement that cannot be made as asked (range, amplitude, a loop that does not settle)."""


@dataclass(frozen=True)
class FraPlan:
    """One frequency's episode: the start-up, then the averaging window of whole injection periods."""

    f: float
    amplitude: float
    settle: float
    window: float
    soft_start_ms: float = SOFT_START_MS

    @property
    def end(self) -> float:
        return self.settle + self.window

    def steps(self, fsw: float) -> int:
        return max(8, math.ceil(self.end * fsw) + 1)

    def settings(self) -> dict[str, float]:
        return {"finj": self.f, "ainj": self.amplitude, "soft_start_ms": self.soft_start_ms}


def settle_for(fsw: float, soft_start_ms: float = SOFT_START_MS, slow_periods: float = 0.0) -> float:
    """The start-up before the averaging window, s: the converter's soft start, then SETTLE_PERIODS control periods
    (the reference buck's: 10 ms), or SLOW_MODES time constants of the loop's slowest mode where that is longer
    (``slow_periods``, in control periods; at most MAX_SETTLE_PERIODS). At light load the loop's slowest mode is slow
    (the teacher at vin 150 V, vref 140 V, 750 Ohm: 629 periods) and the injection read 8 ms after the soft start is
    taken on an operating point still moving: 48.3 degrees of phase margin there, where the settled injection and
    POP + AC both read 35.8."""
    periods = max(SETTLE_PERIODS, min(SLOW_MODES * slow_periods, MAX_SETTLE_PERIODS))
    return round(soft_start_ms * 1e-3 + periods / fsw, 12)


def slowest_mode_periods(who: str, actor, point: EpisodeParams) -> float:
    """The time constant, in control periods, of the slowest mode of ``who``'s loop at ``point``: -1 / ln of its
    period map's critical pole (POP on the fast model). Where Newton finds no periodic operating point (a mode this
    slow defeats it) inf: the longest start-up (measured: a network at vin 150 V, vref 140 V, 750 Ohm without an orbit
    by POP reads 5.9 degrees of phase margin after 65 ms, 79.4 after 250 ms, 79.8 after 500 ms). 0, the fixed
    start-up, where the orbit is unstable (the loop oscillates: waiting longer settles nothing) or POP cannot run (a
    netlist without a PyTorch model)."""
    from .pop import Loop, PopError, critical_pole, find_orbit
    try:
        loop = Loop(who, actor if who == "nn" else None, point)
    except Exception as err:  # noqa: BLE001 (a network POP cannot run: the fixed start-up)
        log.debug("fra start-up: POP cannot run the %s (%s): the fixed start-up", who, err)
        return 0.0
    try:
        orbit = find_orbit(loop)
    except PopError as err:
        log.debug("fra start-up: no orbit for the %s at vin %g V, vref %g V (%s): the longest", who, point.vin,
                  point.vref, err)
        return math.inf
    rho = critical_pole(loop, orbit)
    return -1.0 / math.log(rho) if 0.0 < rho < 1.0 else 0.0


def plan_for(f: float, amplitude: float = AMPLITUDE, settle: float = SETTLE, tavgmin: float = TAVGMIN,
             soft_start_ms: float = SOFT_START_MS) -> FraPlan:
    return FraPlan(f, amplitude, settle, max(1, math.ceil(tavgmin * f - 1e-9)) / f, soft_start_ms)


def frequencies(fstart: float = 10.0, fend: float | None = None, per_octave: int = 3, fsw: float = 50e3) -> np.ndarray:
    """Log-spaced frequencies from fstart to fend (both included; None: fsw/2), ``per_octave`` per octave."""
    fend = fsw / 2 if fend is None else fend
    if not (0 < fstart < fend <= fsw / 2 + 1e-9):
        raise FraError(f"the frequency range must lie in (0, fsw/2] = (0, {fsw / 2:g}] Hz with fstart < fend, got "
                       f"{fstart:g}..{fend:g} Hz (the loop is sampled once per switching period)")
    if per_octave < 1:
        raise FraError(f"--per-octave must be >= 1, got {per_octave}")
    n = max(2, math.ceil(math.log2(fend / fstart) * per_octave) + 1)
    return np.geomspace(fstart, fend, n)


def fourier(wave: pd.DataFrame, column: str, f: float, t0: float, t1: float,
            reference: pd.DataFrame | None = None, ref_column: str | None = None) -> complex:
    """Complex amplitude of ``column`` at ``f`` over [t0, t1] (whole periods): midpoint rule on the T/20 grid.

    ``reference``: the same episode without the injection; its waveform is subtracted first, so that what is
    left is the response to the injection alone (a start-up that is still settling does not leak into it)."""
    t = wave["time"].to_numpy()
    dt = float(np.median(np.diff(t)))
    n = max(8, round((t1 - t0) / dt))
    tt = t0 + (np.arange(n) + 0.5) * (t1 - t0) / n
    v = np.interp(tt, t, wave[column].to_numpy())
    if reference is not None:
        v = v - np.interp(tt, reference["time"].to_numpy(), reference[ref_column or column].to_numpy())
    return complex(2.0 * np.mean(v * np.exp(-2j * math.pi * f * tt)))


def loop_gain(ep: Episode, plan: FraPlan, reference: Episode | None = None) -> tuple[complex, complex, complex]:
    """T = -V(out)/V(vsense) at the injection frequency, and the two components (less the uninjected run's)."""
    ref = reference.waveforms if reference is not None else None
    vout, sense = IO.column(IO.vout), IO.column(IO.sense)
    out = fourier(ep.waveforms, vout, plan.f, plan.settle, plan.end, ref, vout)
    sensed = fourier(ep.waveforms, sense, plan.f, plan.settle, plan.end, ref, sense)
    return -out / sensed, out, sensed


def check_settled(ep: Episode, plan: FraPlan) -> None:
    """The start-up must have settled before the window, else the loop is not at its operating point."""
    t, v = ep.rows["time"].to_numpy(), ep.rows[IO.column(IO.vout)].to_numpy()
    before = (t > plan.settle - SETTLED_PERIODS / ep.params.fsw) & (t <= plan.settle)
    worst = float(np.abs(v[before] - ep.params.vref).max()) if before.any() else math.inf
    if not worst <= SETTLED_BAND * ep.params.vref + plan.amplitude:
        raise FraError(f"the loop does not reach steady state before the injection window at {plan.settle * 1e3:g} ms "
                       f"(|Vout - vref| up to {worst:.3g} V, vref {ep.params.vref:g} V): it does not regulate there, "
                       "or needs a longer start-up (--settle)")


def parse_point(text: str, conv=None) -> EpisodeParams:
    """``vin=200,vref=100,ro=20,Lo=50e-6`` (missing keys at the converter's nominal point; the reference buck's
    without one)."""
    from ..converters.buck.converter import reference
    conv = conv or reference()
    values = dict(conv.nominal)
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\w+)\s*=\s*(\S+)", part)
        key = next((k for k in values if m and k.lower() == m.group(1).lower()), None)
        if key is None:
            raise FraError(f"cannot read {part!r} in --point {text!r}: write vin=V,vref=V,ro=OHM,Lo=H")
        try:
            values[key] = float(m.group(2))
        except ValueError:
            raise FraError(f"--point {text!r}: {part!r} is not a number") from None
    try:
        return conv.params(**values)
    except EpisodeError as err:
        raise FraError(f"--point {text!r}: {err}") from None


def _phase_deg(T: np.ndarray) -> np.ndarray:
    """Phase of T in degrees, unwrapped along frequency, the lowest frequency in (-180, 180]."""
    ph = np.unwrap(np.angle(T))
    return np.degrees(ph)


def measure(actor, points: list[EpisodeParams], freqs: np.ndarray, workdir: str | Path, simulator=None, *,
            amplitude: float = AMPLITUDE, jobs: int = 2, controllers: tuple[str, ...] = ("nn", "teacher"),
            settle: float | None = None, check_linearity: bool = False, timeout: float = 3600.0,
            max_step: float | None = None, soft_start_ms: float = SOFT_START_MS) -> FraResult:
    """The loop gain of each controller at each point and frequency (one episode each; SPICE runs ``jobs`` at once).

    ``soft_start_ms``: the converter's soft start (``Converter.soft_start_ms``); ``settle``: the start-up before the
    averaging window, s (None: ``settle_for`` the points' clock, that soft start and each loop's slowest mode there).

    ``max_step``: SPICE's largest time step; None: T/400. Where the loop gain is large the injected response left
    in V(vsense) is a small difference of two runs, and default-step ngspice (T/20) moves it by its own step error
    (measured: the pretrained actor at 640 Hz, |T| 32.5 dB on the fast simulator and at T/400, 38 dB at T/20).
    """
    if max_step is None and not is_fast(simulator) and points:
        max_step = 1 / points[0].fsw / SPICE_STEP
    if not amplitude > 0:
        raise FraError(f"--amplitude must be a positive voltage, got {amplitude!r}")
    freqs = np.asarray(freqs, float)
    records = []
    for k, point in enumerate(points, 1):
        for who in controllers:
            start = (settle if settle is not None else
                     settle_for(point.fsw, soft_start_ms, slowest_mode_periods(who, actor, point)), soft_start_ms)
            base, reference = _sweep(who, actor, point, freqs, amplitude, start, Path(workdir) / f"p{k}_{who}",
                                     simulator, jobs, timeout, max_step)
            half = None
            if check_linearity:  # each frequency again at half the amplitude it ran at
                half = _half(who, actor, point, freqs, base, reference, start, Path(workdir) / f"p{k}_{who}_half",
                             simulator, jobs, timeout, max_step)
            Ts = np.array([r[0] for r in base])
            phase = _phase_deg(np.where(np.isfinite(Ts), Ts, 1.0))
            for i, (f, (T, out, sense, error, used)) in enumerate(zip(freqs, base)):
                rec = {"point": k, "vin": point.vin, "vref": point.vref, "ro": point.ro, "Lo": point.Lo,
                       "controller": who, "f_Hz": f, "gain_dB": 20 * math.log10(abs(T)) if np.isfinite(T) else np.nan,
                       "phase_deg": phase[i] if np.isfinite(T) else np.nan, "vout_amp_V": abs(out),
                       "vsense_amp_V": abs(sense), "amplitude_V": used, "error": error}
                if half is not None:
                    T2 = half[i][0]
                    d_db = abs(20 * math.log10(abs(T2) / abs(T))) if np.isfinite(T2) and np.isfinite(T) else np.nan
                    d_deg = abs(math.degrees(np.angle(T2 / T))) if np.isfinite(T2) and np.isfinite(T) else np.nan
                    rec |= {"half_amplitude_dB": d_db, "half_amplitude_deg": d_deg,
                            "linear": bool(d_db <= LINEARITY_DB and d_deg <= LINEARITY_DEG)}
                records.append(rec)
    return FraResult(pd.DataFrame(records), list(points))


def _half(who, actor, point, freqs, base, reference, start, workdir, simulator, jobs, timeout, max_step) -> list:
    """The linearity check: every frequency at half the amplitude it was measured with (the same reference run:
    without injection it does not depend on the amplitude)."""
    plans = [plan_for(f, used / 2, start[0], soft_start_ms=start[1]) for f, (*_, used) in zip(freqs, base)]
    if not isinstance(reference, Episode):
        return [(complex(math.nan, math.nan),)] * len(plans)
    who_actor = actor if who == "nn" else None
    return _evaluate(plans, _runs(CONTROLLERS[who], who_actor, point, plans, workdir, simulator, jobs, timeout,
                                  max_step), reference)


def _measure_one(actor, point: EpisodeParams, freqs, who: str, simulator, amplitude: float, settle: float | None,
                 check_linearity: bool, timeout: float, max_step: float | None, soft_start_ms: float) -> pd.DataFrame:
    """One point and controller on a Dask worker (a scratch folder of its own)."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="buckbi-fra-") as tmp:
        return measure(actor, [point], freqs, tmp, simulator, amplitude=amplitude, jobs=1, controllers=(who,),
                       settle=settle, check_linearity=check_linearity, timeout=timeout, max_step=max_step,
                       soft_start_ms=soft_start_ms).table


def measure_on_dask(actor, points: list[EpisodeParams], freqs: np.ndarray, client, simulator=None, *,
                    amplitude: float = AMPLITUDE, controllers: tuple[str, ...] = ("nn", "teacher"),
                    settle: float | None = None, check_linearity: bool = False, timeout: float = 3600.0,
                    max_step: float | None = None, soft_start_ms: float = SOFT_START_MS) -> FraResult:
    """``measure`` with one Dask task per point and controller (each runs its frequencies in order)."""
    remote = client.scatter(actor, broadcast=True, hash=False) if actor is not None else None
    jobs = [(k, p, who) for k, p in enumerate(points, 1) for who in controllers]
    futures = [client.submit(_measure_one, remote if who == "nn" else None, p, np.asarray(freqs, float), who,
                             simulator, amplitude, settle, check_linearity, timeout, max_step, soft_start_ms,
                             pure=False)
               for _, p, who in jobs]
    tables = []
    for (k, _, _), table in zip(jobs, client.gather(futures)):
        tables.append(table.assign(point=k))
    return FraResult(pd.concat(tables, ignore_index=True), list(points))


def _sweep(who: str, actor, point: EpisodeParams, freqs: np.ndarray, amplitude: float, start: tuple[float, float],
           workdir: Path, simulator, jobs: int, timeout: float, max_step: float | None,
           adapt: bool = True) -> tuple[list[tuple[complex, complex, complex, str, float]], Episode | Exception]:
    """Every frequency of one controller at one point: (T, V(out), V(vsense), error, amplitude) per frequency, and
    the reference run (without injection) they were taken against.

    Near a crossover with a small phase margin |1 + T| is small and the controller sees several times what is
    injected: where |V(vsense)| exceeds 3x the amplitude, that frequency runs again with the amplitude scaled down to
    bring |V(vsense)| to it (at most 10x smaller). It is never scaled up: where the loop gain is large a larger
    injection moves V(out), and with it the duty the network reads back (NNin11..15), far enough to leave its
    linear range (measured: the pretrained actor at 640 Hz, 1.2 V: 20.6 dB instead of 32.5 dB).
    """
    gym, who_actor = CONTROLLERS[who], actor if who == "nn" else None
    plans = [plan_for(f, amplitude, start[0], soft_start_ms=start[1]) for f in freqs]
    longest = max(plans, key=lambda p: p.end)
    # The reference: the longest run without injection (ainj = 0), subtracted from each (same length or longer).
    reference = _runs(gym, who_actor, point, [replace(longest, amplitude=0.0)], workdir / "ref", simulator, jobs,
                      timeout, max_step)[0]
    nan = complex(math.nan, math.nan)
    if not isinstance(reference, Episode):
        why = f"the run without injection failed: {type(reference).__name__}: {str(reference).splitlines()[0][:200]}"
        return [(nan, nan, nan, why, amplitude)] * len(plans), reference
    out = _evaluate(plans, _runs(gym, who_actor, point, plans, workdir, simulator, jobs, timeout, max_step), reference)
    if adapt:
        again = {i: replace(plans[i], amplitude=float(max(amplitude * amplitude / abs(r[2]), amplitude / 10)))
                 for i, r in enumerate(out) if not r[3] and abs(r[2]) > 3 * amplitude}
        if again:
            idx = list(again)
            redo = _evaluate([again[i] for i in idx], _runs(gym, who_actor, point, [again[i] for i in idx],
                                                            workdir / "adapt", simulator, jobs, timeout, max_step),
                             reference)
            for i, r in zip(idx, redo):
                out[i] = r
    return out, reference


def _runs(gym: str, actor, point: EpisodeParams, plans: list[FraPlan], workdir: Path, simulator, jobs: int,
          timeout: float, max_step: float | None) -> list:
    """The episodes of ``plans`` (longest first, so that a pool stays busy), in the plans' order."""
    order = sorted(range(len(plans)), key=lambda i: -plans[i].end)
    if is_fast(simulator):  # nobody keeps the exported network of a loop-gain run: do not write it
        simulator = FastEngine(artefacts=False)
    eps = run_episodes(gym, actor, [replace(point, steps=plans[i].steps(point.fsw)) for i in order], workdir,
                       simulator, parallel=jobs, timeout=timeout, keep_waveforms=True, scenario="fra",
                       settings=[plans[i].settings() for i in order], max_step=max_step)
    out: list = [None] * len(plans)
    for i, ep in zip(order, eps):
        out[i] = ep
    return out


def _evaluate(plans: list[FraPlan], eps: list, reference: Episode) -> list[tuple[complex, complex, complex, str, float]]:
    nan = complex(math.nan, math.nan)
    out = []
    for plan, ep in zip(plans, eps):
        if not isinstance(ep, Episode):
            out.append((nan, nan, nan, f"{type(ep).__name__}: {str(ep).splitlines()[0][:200]}", plan.amplitude))
            continue
        try:
            check_settled(ep, plan)
            out.append((*loop_gain(ep, plan, reference), "", plan.amplitude))
        except FraError as err:
            out.append((nan, nan, nan, str(err), plan.amplitude))
    return out
