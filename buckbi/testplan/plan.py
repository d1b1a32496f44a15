"""A sign-off test plan (TOML): named corners, tests of scenarios with settings, limits on named figures.

Every problem is a ``PlanError`` naming the table and key (``buckbi testplan`` exits 2 on it). A limit
``figure = value`` is the figure's largest allowed value; ``min_figure = value`` its smallest (``min_phase_margin_deg``,
``min_gain_margin_dB``, or any figure).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..contract import EpisodeError
from ..converters.buck.scenarios import SCENARIOS, get_scenario, scenario_params
from ..converters.buck.spec import NOMINAL, RANGES, EpisodeParams
from ..figures import BAND_PCT, FIGURES, figures_of

DEFAULT = "default"  # PLAN may be this word: the plan shipped with buckbi
CORNER_KEYS = ("vin", "vref", "ro", "Lo")
TEST_KEYS = ("name", "scenario", "corners", "limits", "band_pct", "description")
FRA_KEYS = {"f_start_Hz": 10.0, "f_end_Hz": 25e3, "per_octave": 3.0, "amplitude_V": 0.05}  # the fra test's settings
LOWER_ONLY = ("phase_margin_deg", "gain_margin_dB")  # figures that only take a smallest allowed value
CONTROLLERS = ("nn", "teacher")


class PlanError(ValueError):
    """The plan cannot run as written; the message names the table and key."""


@dataclass(frozen=True)
class Corner:
    name: str
    vin: float
    vref: float
    ro: float
    Lo: float

    def params(self) -> EpisodeParams:
        return EpisodeParams(vin=self.vin, ro=self.ro, Lo=self.Lo, vref=self.vref)

    @property
    def outside_training(self) -> list[str]:
        """The axes outside the training box (an extrapolation, reported as such)."""
        return [k for k, (lo, hi) in RANGES.items() if not lo <= getattr(self, k) <= hi]


@dataclass(frozen=True)
class Limit:
    figure: str
    value: float
    lower: bool  # True: the smallest allowed value

    @property
    def key(self) -> str:
        return f"min_{self.figure}" if self.lower else self.figure

    def passes(self, x: float) -> bool:
        """NaN (not measured) fails; inf compares (a recovery that never happens fails, an unbounded gain margin
        passes)."""
        if math.isnan(x):
            return False
        return x >= self.value if self.lower else x <= self.value

    def text(self) -> str:
        return f"{'>=' if self.lower else '<='} {self.value:g}"


@dataclass(frozen=True)
class Test:
    """One [[tests]] table: a scenario with its settings, the corners it runs at, the limits it is judged by."""

    __test__ = False  # not a pytest test class
    name: str
    scenario: str
    corners: tuple[str, ...]
    limits: tuple[Limit, ...]
    settings: dict = field(default_factory=dict)  # the scenario's settings (fra: FRA_KEYS)
    band_pct: float = BAND_PCT
    description: str = ""


@dataclass(frozen=True)
class Plan:
    name: str
    corners: dict[str, Corner]
    tests: tuple[Test, ...]
    source: str  # where it was read from

    def cells(self) -> list[tuple[Test, Corner]]:
        """Every (test, corner) of the plan, in the plan's order."""
        return [(t, self.corners[c]) for t in self.tests for c in t.corners]


def default_plan_path() -> Path:
    return Path(str(resources.files("buckbi.testplan") / "default.toml"))


def load_plan(source: str | Path) -> Plan:
    """Read and check a plan file (or the word ``default``); raises PlanError."""
    path = default_plan_path() if str(source) == DEFAULT else Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PlanError(f"cannot read the plan {path}: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PlanError(f"{path} is not valid TOML: {err}") from None
    return parse_plan(data, str(path))


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise PlanError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def parse_plan(data: dict, source: str = "<plan>") -> Plan:
    """Check a parsed plan: every key known, every corner valid, every test's scenario, settings and figures."""
    unknown = sorted(set(data) - {"plan", "corners", "tests"})
    if unknown:
        raise PlanError(f"{source}: unknown top-level key {unknown[0]!r} (a plan has [plan], [corners.NAME] and "
                        "[[tests]])")
    head = data.get("plan", {})
    if not isinstance(head, dict) or set(head) - {"name", "description"}:
        raise PlanError(f"{source}: [plan] takes name and description only")
    corners = _corners(data.get("corners"), source)
    raw_tests = data.get("tests")
    if not isinstance(raw_tests, list) or not raw_tests:
        raise PlanError(f"{source}: no [[tests]]: a plan needs at least one test")
    tests, names = [], set()
    for k, raw in enumerate(raw_tests):
        test = _test(raw, k, corners, source)
        if test.name in names:
            raise PlanError(f"{source}: tests[{k}]: the name {test.name!r} is used twice (names identify results)")
        names.add(test.name)
        tests.append(test)
    return Plan(str(head.get("name", Path(source).stem)), corners, tuple(tests), source)


def _corners(raw, source: str) -> dict[str, Corner]:
    if not isinstance(raw, dict) or not raw:
        raise PlanError(f"{source}: no [corners.NAME] tables: a plan needs at least one operating point")
    out = {}
    for name, table in raw.items():
        where = f"{source}: [corners.{name}]"
        if not isinstance(table, dict):
            raise PlanError(f"{where} must be a table of {', '.join(CORNER_KEYS)}")
        bad = sorted(set(table) - set(CORNER_KEYS))
        if bad:
            raise PlanError(f"{where}: unknown key {bad[0]!r} (a corner has {', '.join(CORNER_KEYS)})")
        missing = [k for k in ("vin", "vref", "ro") if k not in table]
        if missing:
            raise PlanError(f"{where}: missing {', '.join(missing)} (Lo may be left out: {NOMINAL['Lo']:g} H)")
        values = {k: _number(table.get(k, NOMINAL.get(k)), f"{where} {k}") for k in CORNER_KEYS}
        try:
            corner = Corner(name, **values)
            corner.params()
        except EpisodeError as err:
            raise PlanError(f"{where}: {err}") from None
        if corner.vin > EpisodeParams.__dataclass_fields__["vmax"].default:
            raise PlanError(f"{where}: vin {corner.vin:g} V is above vmax (250 V), the top of the controller's "
                            "sensed range")
        out[name] = corner
    return out


def _test(raw, k: int, corners: dict[str, Corner], source: str) -> Test:
    where = f"{source}: tests[{k}]"
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be a table")
    for key in ("name", "scenario"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise PlanError(f"{where}: missing {key} (a string)")
    where = f"{source}: tests[{k}] ({raw['name']})"
    if raw["scenario"] not in SCENARIOS:
        raise PlanError(f"{where}: unknown scenario {raw['scenario']!r}; choose one of {', '.join(SCENARIOS)}")
    scenario = get_scenario(raw["scenario"])
    allowed = dict(FRA_KEYS) if scenario.name == "fra" else dict(scenario.settings)
    settings = {}
    for key, value in raw.items():
        if key in TEST_KEYS:
            continue
        if key not in allowed:
            raise PlanError(f"{where}: unknown key {key!r}: the {scenario.name} scenario's settings are "
                            f"{', '.join(allowed) or 'none'}; a test also takes {', '.join(TEST_KEYS)}")
        settings[key] = _number(value, f"{where} {key}")
    chosen = raw.get("corners", "all")
    if chosen == "all":
        chosen = list(corners)
    if not isinstance(chosen, list) or not chosen or not all(isinstance(c, str) for c in chosen):
        raise PlanError(f"{where}: corners must be \"all\" or a list of corner names")
    for c in chosen:
        if c not in corners:
            raise PlanError(f"{where}: corners: no corner {c!r} (the plan has {', '.join(corners)})")
    limits = _limits(raw.get("limits", {}), scenario.name, where)
    band = _number(raw.get("band_pct", BAND_PCT), f"{where} band_pct")
    if not band > 0:
        raise PlanError(f"{where}: band_pct must be > 0, got {band:g}")
    test = Test(raw["name"], scenario.name, tuple(dict.fromkeys(chosen)), limits, settings, band,
                str(raw.get("description", "")))
    if scenario.name == "fra":
        _check_fra(settings, where)
    else:
        for c in test.corners:
            problems = scenario.problems(corners[c].params(), settings)
            if problems:
                raise PlanError(f"{where} at [corners.{c}]: {'; '.join(problems)}")
    return test


def _limits(raw, scenario: str, where: str) -> tuple[Limit, ...]:
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: limits must be a table {{ figure = value }}")
    have = figures_of(scenario)
    out = []
    for key, value in raw.items():
        lower = key.startswith("min_")
        fig = key[4:] if lower else key
        if fig not in FIGURES:
            raise PlanError(f"{where}: limits: unknown figure {key!r}; figures are {', '.join(FIGURES)} "
                            "(min_FIGURE for a smallest allowed value)")
        if fig not in have:
            raise PlanError(f"{where}: limits: the {scenario} scenario has no figure {fig!r} (its figures: "
                            f"{', '.join(have)})")
        if fig in LOWER_ONLY and not lower:
            raise PlanError(f"{where}: limits: {fig} takes a smallest allowed value: write min_{fig}")
        out.append(Limit(fig, _number(value, f"{where} limits.{key}"), lower))
    return tuple(out)


def _check_fra(st: dict, where: str) -> None:
    s = FRA_KEYS | st
    if not 0 < s["f_start_Hz"] < s["f_end_Hz"] <= 25e3:
        raise PlanError(f"{where}: need 0 < f_start_Hz < f_end_Hz <= 25 kHz (fsw/2), got {s['f_start_Hz']:g} and "
                        f"{s['f_end_Hz']:g}")
    if s["per_octave"] < 1 or s["per_octave"] != int(s["per_octave"]) or s["amplitude_V"] <= 0:
        raise PlanError(f"{where}: per_octave must be a whole number >= 1 and amplitude_V > 0")


def cell_params(test: Test, corner: Corner) -> EpisodeParams:
    """The corner's operating point run for the test's scenario length."""
    if test.scenario == "fra":
        return corner.params()
    return scenario_params(corner.params(), test.scenario, test.settings)


def cell_definition(test: Test, corner: Corner, controller: str, actor_id: str, simulator: str) -> str:
    """What a cell's result depends on (not its limits: verdicts are taken again from stored figures)."""
    from .. import __version__
    return json.dumps({"buckbi": __version__, "scenario": test.scenario, "settings": test.settings, "band_pct": test.band_pct,
                       "corner": [corner.vin, corner.vref, corner.ro, corner.Lo], "controller": controller,
                       "actor": actor_id if controller == "nn" else "", "simulator": simulator}, sort_keys=True)


def cell_hash(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:16]
