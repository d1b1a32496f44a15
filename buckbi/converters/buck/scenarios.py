"""Scenarios of the buck, composed from parts: a gym's circuit plus a load, an input source and a reference profile.

Both engines read the same description: the SPICE engine includes the parts' files, the fast model parses the
same files (``buckbi.pwl.circuit.scenario_signals``). A new scenario is a new row here (and its part files);
the engines do not change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...contract import EpisodeError
from .converter import Converter, is_reference, reference
from .spec import EpisodeParams


@dataclass(frozen=True)
class Scenario:
    """A named test of a closed loop: its parts, its settings and the events its figures are taken around.

    Settings are ``.param`` values the parts read (both engines get the same numbers); a setting ``duration_ms``
    fixes the episode's length, and each event's time is the setting it names (e.g. ``t_step_ms``).
    """

    name: str
    description: str
    load: str  # part file: the load from node out
    source: str  # part file: the input source at node in
    reference: str  # part file: the reference profile at node ref
    events: tuple[tuple[str, str], ...] = ()  # (name, setting of its time in ms): steps whose response are figures
    gyms: tuple[str, ...] = ("teacher", "gym1", "gym2", "deploy")
    step: str = ""  # what steps at the events, for plots: "load step", "line step", "reference step"
    sense: str = "sense_direct.inc"  # part file: what the controller reads of V(out), at node vsense
    settings: tuple[tuple[str, float], ...] = ()  # (.param name, default) the parts read, set per episode

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.load, self.source, self.reference, self.sense)

    @property
    def injects(self) -> bool:
        """True when the controller's sensed output carries the loop-gain injection (node vsense)."""
        return self.sense != "sense_direct.inc"

    def resolve_settings(self, given: dict | None) -> dict[str, float]:
        """The scenario's settings: its defaults, overridden by ``given``; an unknown name is refused."""
        names = dict(self.settings)
        unknown = sorted(set(given or {}) - set(names))
        if unknown:
            have = ", ".join(names) or "none"
            raise EpisodeError(f"the {self.name} scenario has no setting {', '.join(unknown)} (its settings: {have})")
        out = names | {k: float(v) for k, v in (given or {}).items()}
        bad = [k for k, v in out.items() if not math.isfinite(v)]
        if bad:
            raise EpisodeError(f"the {self.name} scenario's setting {', '.join(bad)} must be a finite number")
        return out

    def duration(self, settings: dict | None = None) -> float | None:
        """The episode's length in seconds (None: the episode's own steps)."""
        ms = self.resolve_settings(settings).get("duration_ms")
        return None if ms is None else ms * 1e-3

    def events_at(self, settings: dict | None = None) -> tuple[tuple[str, float], ...]:
        """The events as (name, time in s), with the settings' times."""
        st = self.resolve_settings(settings)
        return tuple((name, st[key] * 1e-3) for name, key in self.events)

    def check_gym(self, gym: str) -> None:
        if gym not in self.gyms:
            raise EpisodeError(f"the {self.name} scenario runs a controller alone: gym {' or '.join(self.gyms)}, "
                               f"not {gym}")

    def problems(self, params: EpisodeParams, settings: dict | None = None) -> list[str]:
        """Why this scenario cannot run as asked at ``params`` (empty: it can): events out of order or after the
        end, a soft start not finished before the first event, a step that leaves the buck's range."""
        st = self.resolve_settings(settings)
        why = []
        if st.get("soft_start_ms", 1.0) <= 0:
            why.append(f"soft_start_ms must be > 0, got {st['soft_start_ms']:g}")
        times = [t for _, t in self.events_at(st)]
        end = self.duration(st)
        if times:
            if times != sorted(times) or times[0] <= st.get("soft_start_ms", 0) * 1e-3 or len(set(times)) < len(times):
                why.append(f"event times {', '.join(f'{t * 1e3:g}' for t in times)} ms must increase and follow the "
                           f"soft start ({st.get('soft_start_ms', 0):g} ms)")
            if end is not None and times[-1] + 1e-3 > end:
                why.append(f"the last event ({times[-1] * 1e3:g} ms) must come at least 1 ms before the end "
                           f"(duration_ms {end * 1e3:g})")
        if end is not None and end * params.fsw < 10:
            why.append(f"duration_ms {end * 1e3:g} is shorter than 10 control periods")
        for name, check in _RANGE_CHECKS.get(self.name, ()):
            msg = check(params, st)
            if msg:
                why.append(msg)
        return why


def _line_target(p: EpisodeParams, st: dict) -> str:
    target = p.vin * (1 + st["step_pct"] / 100)
    if target > p.vmax:
        return (f"the line step to {target:g} V (vin {p.vin:g} V {st['step_pct']:+g} %) goes above vmax "
                f"({p.vmax:g} V, the top of the sensed range); give a smaller or negative step_pct")
    if target <= p.vref:
        return f"the line step to {target:g} V does not stay above vref ({p.vref:g} V): a buck only steps down"
    return ""


def _ref_target(p: EpisodeParams, st: dict) -> str:
    target = p.vref * (1 + st["step_pct"] / 100)
    if not 0 < target < p.vin:
        return (f"the reference step to {target:g} V (vref {p.vref:g} V {st['step_pct']:+g} %) leaves 0..vin "
                f"({p.vin:g} V)")
    return ""


def _load_levels(p: EpisodeParams, st: dict) -> str:
    if st["light_ohm"] <= 0 or st["heavy_ohm"] <= 0:
        return f"light_ohm and heavy_ohm must be > 0 Ohm, got {st['light_ohm']:g} and {st['heavy_ohm']:g}"
    return ""


def _injection(p: EpisodeParams, st: dict) -> str:
    if not (0 < st["finj"] < p.fsw / 2 and st["ainj"] > 0):
        return f"finj must lie in 0..fsw/2 ({p.fsw / 2:g} Hz) and ainj be > 0, got {st['finj']:g} Hz, {st['ainj']:g} V"
    return ""


_RANGE_CHECKS = {"linestep": (("step_pct", _line_target),), "refstep": (("step_pct", _ref_target),),
                 "loadstep": (("levels", _load_levels),), "fra": (("injection", _injection),)}

# The reference's deployment test (BUCK_VM_gym.asc, .tran 80m): steps at 40 and 60 ms, 80 ms in all.
STEP_EVENTS = (("up", "t_step_ms"), ("down", "t_back_ms"))
STEP_TIMING = (("t_step_ms", 40.0), ("t_back_ms", 60.0), ("duration_ms", 80.0))
SOFT_START = (("soft_start_ms", 2.0),)  # the reference's soft start: vref per 2 ms
ALONE = ("teacher", "deploy")  # a controller alone, no label needed
ANY_GYM = ("teacher", "gym1", "gym2", "deploy")  # steps a training recipe also runs with the teacher labelling

SCENARIOS = {s.name: s for s in (
    Scenario("startup", "soft start into the R-L load", "load_rl.inc", "source_dc.inc", "ref_softstart.inc",
             settings=SOFT_START),
    Scenario("loadstep", "current-source load vref/light_ohm -> vref/heavy_ohm A at t_step_ms and back at "
             "t_back_ms (default vref/80 -> vref/10 A at 40 and 60 ms, the reference's deployment test)",
             "load_step.inc", "source_dc.inc", "ref_softstart.inc", STEP_EVENTS, ANY_GYM, "load step",
             settings=SOFT_START + (("light_ohm", 80.0), ("heavy_ohm", 10.0)) + STEP_TIMING),
    Scenario("linestep", "vin -> vin (1 + step_pct/100) (at most vmax) at t_step_ms and back at t_back_ms, into the "
             "R-L load (default +20 % at 40 and 60 ms)", "load_rl.inc", "source_linestep.inc", "ref_softstart.inc",
             STEP_EVENTS, ANY_GYM, "line step", settings=SOFT_START + (("step_pct", 20.0),) + STEP_TIMING),
    Scenario("refstep", "the soft start, then vref -> vref (1 + step_pct/100) at t_step_ms and back at t_back_ms "
             "(default -10 % at 40 and 60 ms), into the R-L load", "load_rl.inc", "source_dc.inc", "ref_step.inc",
             (("step", "t_step_ms"), ("back", "t_back_ms")), ANY_GYM, "reference step",
             settings=SOFT_START + (("step_pct", -10.0),) + STEP_TIMING),
    Scenario("fra", "the start-up, a sine injected in series with the sensed Vout (loop gain, buckbi.loopgain)",
             "load_rl.inc", "source_dc.inc", "ref_softstart.inc", gyms=ALONE, sense="sense_inject.inc",
             settings=SOFT_START + (("finj", 1e3), ("ainj", 0.1))),
    Scenario("longrun", "the start-up, then the controller left to run for duration_ms (default 1 s = 50,000 "
             "periods at 50 kHz) into the R-L load", "load_rl.inc", "source_dc.inc", "ref_softstart.inc", gyms=ALONE,
             settings=SOFT_START + (("duration_ms", 1000.0), ("judge_from_ms", 20.0))),
)}


def get_scenario(name: str | Scenario) -> Scenario:
    if isinstance(name, Scenario):
        return name
    if name not in SCENARIOS:
        raise EpisodeError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def scenario_params(params: EpisodeParams, scenario: str | Scenario, settings: dict | None = None) -> EpisodeParams:
    """The operating point run for the scenario's length (80 ms = 3998 periods at 50 kHz for the step tests)."""
    end = get_scenario(scenario).duration(settings)
    return params if end is None else replace(params, steps=round(end * params.fsw) - 2)


def check_length(params: EpisodeParams, scenario: Scenario, settings: dict | None = None) -> None:
    """Refuse an episode too short for the scenario's events."""
    end = scenario.duration(settings)
    if end is not None and params.duration < end - 0.5 / params.fsw:
        times = " and ".join(f"{t * 1e3:g}" for _, t in scenario.events_at(settings)) or "none"
        raise EpisodeError(f"the {scenario.name} scenario needs {end * 1e3:g} ms (events at {times} ms), "
                           f"this episode runs {params.duration * 1e3:g} ms: use scenario_params(params, "
                           f"{scenario.name!r})")


def mapped_axis(conv: Converter):
    """(axis, value, log) -> the value carried from the reference's range of that axis onto ``conv``'s: affine, or
    geometric for log axes (beyond the range: by the ratio to its nearer end)."""
    ref = reference()

    def axis(k: str, x: float, log: bool) -> float:
        (a, b), (c, d) = ref.ranges[k], conv.ranges[k]
        if log:
            return c * (x / a) if x <= a else d * (x / b) if x >= b else c * (d / c) ** (math.log(x / a) / math.log(b / a))
        return c + (x - a) * (d - c) / (b - a)
    return axis


def carry_settings(conv: Converter | None, settings: dict) -> dict:
    """Scenario settings written for the reference buck, for ``conv``: times in control periods (``*_ms`` x the
    clock ratio), the soft start scaled to its own, load levels (``light_ohm``, ``heavy_ohm``) mapped into its ro
    range. The reference buck's: the settings as they are."""
    if is_reference(conv):
        return dict(settings)
    ref = reference()
    t, ss = ref.fsw / conv.fsw, conv.soft_start_ms / ref.soft_start_ms
    axis = mapped_axis(conv)
    out = {}
    for k, v in settings.items():
        if k == "soft_start_ms":
            v = v * ss
        elif k.endswith("_ms"):
            v = v * t
        elif k in ("light_ohm", "heavy_ohm"):
            v = axis("ro", v, True)
        out[k] = v
    return out


def converter_settings(conv: Converter | None, scenario: str | Scenario, settings: dict | None = None) -> dict | None:
    """The settings a command runs ``scenario`` with on ``conv``: the given ones, over the scenario's defaults carried
    to the converter (``carry_settings``). None for the reference buck without settings (the defaults as they are)."""
    if is_reference(conv):
        return settings
    return carry_settings(conv, dict(get_scenario(scenario).settings)) | (settings or {})
