"""Scenarios of the buck, composed from parts: a gym's circuit plus a load, an input source and a reference profile.

Both engines read the same description: the SPICE engine includes the parts' files, the fast model parses the
same files (``buckbi.pwl.circuit.scenario_signals``). A new scenario is a new row here (and its part files);
the engines do not change.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ...contract import EpisodeError
from .spec import EpisodeParams


@dataclass(frozen=True)
class Scenario:
    """A named test of a closed loop: its parts, its length and the events its figures are taken around."""

    name: str
    description: str
    load: str  # part file: the load from node out
    source: str  # part file: the input source at node in
    reference: str  # part file: the reference profile at node ref
    duration: float | None = None  # seconds; None: the episode's own steps
    events: tuple[tuple[str, float], ...] = ()  # (name, time): steps whose deviation and recovery are figures
    gyms: tuple[str, ...] = ("teacher", "gym1", "gym2", "deploy")
    step: str = ""  # what steps at the events, for plots: "load step", "line step"
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
        return names | {k: float(v) for k, v in (given or {}).items()}

    def check_gym(self, gym: str) -> None:
        if gym not in self.gyms:
            raise EpisodeError(f"the {self.name} scenario runs a controller alone: gym {' or '.join(self.gyms)}, "
                               f"not {gym}")


# The reference's deployment test (BUCK_VM_gym.asc, .tran 80m): steps at 40 and 60 ms, 80 ms in all.
STEP_EVENTS = (("up", 40e-3), ("down", 60e-3))
STEP_DURATION = 80e-3
ALONE = ("teacher", "deploy")  # a controller alone, no label needed

SCENARIOS = {s.name: s for s in (
    Scenario("startup", "soft start into the R-L load", "load_rl.inc", "source_dc.inc", "ref_softstart.inc"),
    Scenario("loadstep", "current-source load vref/80 -> vref/10 A at 40 ms and back at 60 ms (the reference's "
             "deployment test)", "load_step.inc", "source_dc.inc", "ref_softstart.inc", STEP_DURATION,
             STEP_EVENTS, ALONE, "load step"),
    Scenario("linestep", "vin -> 1.2 vin (at most vmax) at 40 ms and back at 60 ms, into the R-L load",
             "load_rl.inc", "source_linestep.inc", "ref_softstart.inc", STEP_DURATION, STEP_EVENTS, ALONE, "line step"),
    Scenario("fra", "the start-up, a sine injected in series with the sensed Vout (loop gain, buckbi.loopgain)",
             "load_rl.inc", "source_dc.inc", "ref_softstart.inc", gyms=ALONE, sense="sense_inject.inc",
             settings=(("finj", 1e3), ("ainj", 0.1))),
)}


def get_scenario(name: str | Scenario) -> Scenario:
    if isinstance(name, Scenario):
        return name
    if name not in SCENARIOS:
        raise EpisodeError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def scenario_params(params: EpisodeParams, scenario: str | Scenario) -> EpisodeParams:
    """The operating point run for the scenario's length (80 ms = 3998 periods at 50 kHz for the step tests)."""
    s = get_scenario(scenario)
    return params if s.duration is None else replace(params, steps=round(s.duration * params.fsw) - 2)


def check_length(params: EpisodeParams, scenario: Scenario) -> None:
    """Refuse an episode too short for the scenario's events."""
    if scenario.duration is not None and params.duration < scenario.duration - 0.5 / params.fsw:
        times = " and ".join(f"{t * 1e3:g}" for _, t in scenario.events)
        raise EpisodeError(f"the {scenario.name} scenario needs {scenario.duration * 1e3:g} ms (steps at {times} ms), "
                           f"this episode runs {params.duration * 1e3:g} ms: use scenario_params(params, "
                           f"{scenario.name!r})")
