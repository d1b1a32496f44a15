"""A sign-off test plan (TOML): named corners, tests of scenarios with settings, limits on named figures.

Every problem is a ``PlanError`` naming the table and key (``buckbi testplan`` exits 2 on it). A limit
``figure = value`` is the figure's largest allowed value; ``min_figure = value`` its smallest (``min_phase_margin_deg``,
``min_gain_margin_dB``, or any figure).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import numbers
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..contract import EpisodeError
from ..converters.buck.converter import Converter, ConverterError, reference
from ..converters.buck.design import load_converter
from ..converters.buck.scenarios import SCENARIOS, get_scenario, scenario_params
from ..converters.buck.spec import COMPONENTS, NOMINAL, TOLERANCE_PARTS, EpisodeParams
from ..evaluation.figures import BAND_PCT, FIGURES, figures_of

DEFAULT = "default"  # PLAN may be this word: the plan shipped with buckbi
CORNER_KEYS = ("vin", "vref", "ro", "Lo")
TEST_KEYS = ("name", "scenario", "corners", "limits", "band_pct", "description", "montecarlo", "worstcase",
             "min_yield_pct", "weights", "adc_bits", "delay_periods", "noise_mV", "noise_seed")
FRA_METHODS = ("inject", "pop")  # fra tests: method = "pop" takes the loop gain from the periodic operating point
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
    converter: Converter | None = field(default=None, compare=False, repr=False)  # None: the reference buck

    @property
    def conv(self) -> Converter:
        return self.converter or reference()

    def params(self) -> EpisodeParams:
        return self.conv.params(vin=self.vin, ro=self.ro, Lo=self.Lo, vref=self.vref)

    @property
    def outside_training(self) -> list[str]:
        """The axes outside the converter's ranges, its training box (an extrapolation, reported as such)."""
        r = self.conv.ranges
        return [k for k in ("vin", "ro", "Lo", "vref") if not r[k][0] <= getattr(self, k) <= r[k][1]]


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

    def usage(self, x: float) -> float:
        """How much of the limit a value uses: x / limit for an upper limit, limit / x for a lower one (1: at the
        limit, above 1: past it; inf where it fails without a ratio: NaN, or a lower limit met by x <= 0)."""
        if math.isnan(x):
            return math.inf
        if self.lower:
            return 0.0 if x == math.inf else (self.value / x if x > 0 else math.inf)
        return x / self.value if self.value > 0 else (0.0 if x <= self.value else math.inf)


@dataclass(frozen=True)
class Tolerance:
    """How one part varies: uniform within +-band, Gaussian with 3 sigma = band, or a factor range lo..hi
    (log-uniform); worst case takes the range's two ends."""

    part: str
    kind: str  # "uniform", "gauss" or "factor"
    lo: float  # factor range (gauss: 1 - band .. 1 + band, the 3-sigma points)
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == "gauss":
            return float(max(1e-3, rng.normal(1.0, (self.hi - 1.0) / 3)))
        if self.kind == "factor":
            return float(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))
        return float(rng.uniform(self.lo, self.hi))


@dataclass(frozen=True)
class Variation:
    """A test's component tolerances: ``montecarlo`` (seeded draws) or ``worstcase`` (every extreme combination)."""

    mode: str
    tolerances: tuple[Tolerance, ...]
    draws: int = 1
    seed: int = 0

    def factors(self) -> list[dict[str, float]]:
        """One {part: factor} per draw, draw k from rng([seed, k]) over every part in a fixed order (so adding a
        tolerance does not move the others' draws); worst case: the 2^k corners of the bands."""
        if self.mode == "worstcase":
            ends = [(t.part, (t.lo, t.hi)) for t in self.tolerances]
            return [dict(zip([p for p, _ in ends], combo)) for combo in itertools.product(*[e for _, e in ends])]
        by_part = {t.part: t for t in self.tolerances}
        out = []
        for k in range(1, self.draws + 1):
            draw = {}
            for part in TOLERANCE_PARTS:
                u = np.random.default_rng([self.seed, k, TOLERANCE_PARTS.index(part)])
                if part in by_part:
                    draw[part] = by_part[part].draw(u)
            out.append(draw)
        return out


def nominal_parts(corner: "Corner") -> dict[str, float]:
    """The values a tolerance varies around at a corner: its converter's L1, C1, ESR and the corner's Lo, ro."""
    return {k: getattr(corner.conv, k) for k in COMPONENTS} | {"Lo": corner.Lo, "ro": corner.ro}


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
    variation: Variation | None = None
    min_yield_pct: float = 100.0  # with a variation: the share of draws that must pass every limit
    weights: str = ""  # the NN's weights quantised as deployed: "float16" or "int8" ("" as trained)
    adc_bits: int = 0  # the NN's ADC on its sensed Vout and vin (0: ideal)
    delay_periods: int = 0  # the NN's output applied this many control periods later
    noise_mV: float = 0.0  # seeded Gaussian noise on the sensed Vout (the NN's and the teacher's), rms
    noise_seed: int = 0


@dataclass(frozen=True)
class Plan:
    name: str
    corners: dict[str, Corner]
    tests: tuple[Test, ...]
    source: str  # where it was read from
    converter: Converter | None = None  # None: the reference buck

    def cells(self) -> list[tuple[Test, Corner]]:
        """Every (test, corner) of the plan, in the plan's order."""
        return [(t, self.corners[c]) for t in self.tests for c in t.corners]


def default_plan_path() -> Path:
    return Path(str(resources.files("buckbi.testplan") / "default.toml"))


def load_plan(source: str | Path, converter: str | Path | None = None) -> Plan:
    """Read and check a plan file (or the word ``default``) for a converter (``--converter``: a file or a shipped
    name; else the plan's own ``[plan] converter``; else the reference buck); raises PlanError."""
    if str(source) == DEFAULT and converter is not None and load_converter(converter).record() != reference().record():
        raise PlanError(f"the default plan's corners are the reference buck's; for converter {converter} write a plan "
                        f"with buckbi testplan init --converter {converter}, then run that file")
    path = default_plan_path() if str(source) == DEFAULT else Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PlanError(f"cannot read the plan {path}: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PlanError(f"{path} is not valid TOML: {err}") from None
    return parse_plan(data, str(path), converter)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise PlanError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def parse_plan(data: dict, source: str = "<plan>", converter: str | Path | None = None) -> Plan:
    """Check a parsed plan: every key known, every corner valid, every test's scenario, settings and figures."""
    unknown = sorted(set(data) - {"plan", "corners", "tests"})
    if unknown:
        raise PlanError(f"{source}: unknown top-level key {unknown[0]!r} (a plan has [plan], [corners.NAME] and "
                        "[[tests]])")
    head = data.get("plan", {})
    if not isinstance(head, dict) or set(head) - {"name", "description", "converter"}:
        raise PlanError(f"{source}: [plan] takes name, description and converter only")
    conv = _plan_converter(head.get("converter"), converter, source)
    corners = _corners(data.get("corners"), source, conv)
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
    return Plan(str(head.get("name", Path(source).stem)), corners, tuple(tests), source, conv)


def _plan_converter(written, given, source: str) -> Converter | None:
    """The plan's converter: ``given`` (--converter), else the plan's ``[plan] converter`` (a path relative to the
    plan, or a shipped name), else None (the reference buck); the two naming different converters is an error."""
    try:
        ours = load_converter(given) if given is not None else None
        if written is None:
            return ours
        if not isinstance(written, str) or not written:
            raise PlanError(f"{source}: [plan] converter must be a converter file's path or a shipped name")
        path = Path(source).parent / written if not Path(written).is_absolute() else Path(written)
        theirs = load_converter(written if not path.exists() else path)
    except ConverterError as err:
        raise PlanError(f"{source}: {err}") from None
    if ours is not None and ours.record() != theirs.record():
        raise PlanError(f"{source}: the plan is written for converter {theirs.name!r} ([plan] converter), not "
                        f"{ours.name!r} (--converter): leave --converter out, or run a plan for {ours.name} "
                        "(buckbi testplan init --converter FILE writes one)")
    return theirs


def _corners(raw, source: str, conv: Converter | None = None) -> dict[str, Corner]:
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
            lo = conv.centre["Lo"] if conv else NOMINAL["Lo"]
            raise PlanError(f"{where}: missing {', '.join(missing)} (Lo may be left out: {lo:g} H)")
        default_lo = conv.centre["Lo"] if conv else NOMINAL["Lo"]
        values = {k: _number(table.get(k, default_lo if k == "Lo" else None), f"{where} {k}") for k in CORNER_KEYS}
        try:
            corner = Corner(name, **values, converter=conv)
            corner.params()
        except EpisodeError as err:
            raise PlanError(f"{where}: {err}") from None
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
        if key == "method" and scenario.name == "fra":  # the loop gain by injection (default) or POP + AC
            if value not in FRA_METHODS:
                raise PlanError(f"{where}: method must be one of {', '.join(FRA_METHODS)}, got {value!r}")
            settings[key] = value
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
    variation = _variation(raw, where)
    min_yield = _number(raw.get("min_yield_pct", 100.0), f"{where} min_yield_pct")
    if not 0 <= min_yield <= 100:
        raise PlanError(f"{where}: min_yield_pct must lie in 0..100, got {min_yield:g}")
    weights = raw.get("weights", "")
    from ..nn.quantize import WEIGHT_FORMATS
    if weights not in ("", *WEIGHT_FORMATS):
        raise PlanError(f"{where}: weights must be one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}")
    deploy = {}
    for key, kind in (("adc_bits", int), ("delay_periods", int), ("noise_mV", None), ("noise_seed", None)):
        value = raw.get(key, 0)
        try:  # EpisodeParams checks each value as an episode would take it
            EpisodeParams(vin=200, ro=20, Lo=5e-5, vref=100, **{key: value})
        except (EpisodeError, TypeError, ValueError) as err:
            raise PlanError(f"{where}: {key}: {str(err).split(': ', 1)[-1]}") from None
        deploy[key] = kind(value) if kind else value
    if deploy["noise_mV"] and scenario.name == "fra":
        raise PlanError(f"{where}: noise_mV: the loop gain is measured without sensor noise (they share the sense)")
    test = Test(raw["name"], scenario.name, tuple(dict.fromkeys(chosen)), limits, settings, band,
                str(raw.get("description", "")), variation, min_yield, weights, **deploy)
    if scenario.name == "fra":
        _check_fra(settings, where, corners[chosen[0]].params().fsw)
    else:
        for c in test.corners:
            problems = scenario.problems(corners[c].params(), settings)
            if problems:
                raise PlanError(f"{where} at [corners.{c}]: {'; '.join(problems)}")
    return test


def _band(text, where: str) -> tuple[str, float, float]:
    """"20%" (uniform +-20 %), "gauss:3sigma=20%", "x0.5..2" (a factor range) -> (kind, lo, hi)."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise PlanError(f'{where} must be a string such as "20%", "gauss:3sigma=20%" or "x0.5..2", got {text!r}')
    t = text.strip().replace(" ", "")
    m = re.fullmatch(r"(gauss:3sigma=)?([0-9.eE+-]+)%", t)
    if m:
        band = float(m.group(2)) / 100
        if not 0 < band < 1:
            raise PlanError(f"{where}: a band must lie between 0 and 100 % (exclusive), got {text!r}")
        return ("gauss" if m.group(1) else "uniform"), 1 - band, 1 + band
    m = re.fullmatch(r"x([0-9.eE+-]+)\.\.([0-9.eE+-]+)", t)
    if m:
        lo, hi = float(m.group(1)), float(m.group(2))
        if not 0 < lo < hi or not math.isfinite(hi):
            raise PlanError(f"{where}: a factor range xLO..HI needs 0 < LO < HI, got {text!r}")
        return "factor", lo, hi
    raise PlanError(f'{where}: cannot read {text!r}: write "20%", "gauss:3sigma=20%" or "x0.5..2"')


def _variation(raw: dict, where: str) -> Variation | None:
    given = [k for k in ("montecarlo", "worstcase") if k in raw]
    if not given:
        return None
    if len(given) == 2:
        raise PlanError(f"{where}: give montecarlo or worstcase, not both")
    mode, table = given[0], raw[given[0]]
    if not isinstance(table, dict):
        raise PlanError(f"{where}: {mode} must be a table {{ PART = \"20%\", ... }}")
    draws, seed = 1, 0
    tolerances = []
    for key, value in table.items():
        if mode == "montecarlo" and key in ("draws", "seed"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise PlanError(f"{where}: {mode}.{key} must be a whole number, got {value!r}")
            draws, seed = (value, seed) if key == "draws" else (draws, value)
            continue
        if key not in TOLERANCE_PARTS:
            raise PlanError(f"{where}: {mode}: no part {key!r}; the parts are {', '.join(TOLERANCE_PARTS)}"
                            + (" (and draws, seed)" if mode == "montecarlo" else ""))
        kind, lo, hi = _band(value, f"{where} {mode}.{key}")
        if mode == "worstcase" and kind == "gauss":
            raise PlanError(f"{where}: worstcase.{key}: a worst case takes a band's ends, not a Gaussian")
        tolerances.append(Tolerance(key, kind, lo, hi))
    if mode == "montecarlo" and draws < 1:
        raise PlanError(f"{where}: montecarlo.draws must be >= 1, got {draws}")
    if not tolerances:
        raise PlanError(f"{where}: {mode} varies no part; give e.g. L1 = \"20%\" (parts: {', '.join(TOLERANCE_PARTS)})")
    return Variation(mode, tuple(tolerances), draws, seed)


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


def _check_fra(st: dict, where: str, fsw: float = 50e3) -> None:
    s = FRA_KEYS | st
    if not 0 < s["f_start_Hz"] < s["f_end_Hz"] <= fsw / 2:
        raise PlanError(f"{where}: need 0 < f_start_Hz < f_end_Hz <= {fsw / 2e3:g} kHz (fsw/2), got "
                        f"{s['f_start_Hz']:g} and {s['f_end_Hz']:g}")
    if s["per_octave"] < 1 or s["per_octave"] != int(s["per_octave"]) or s["amplitude_V"] <= 0:
        raise PlanError(f"{where}: per_octave must be a whole number >= 1 and amplitude_V > 0")


def cell_params(test: Test, corner: Corner, parts: dict | None = None, controller: str = "nn") -> EpisodeParams:
    """The corner's operating point (with a draw's part values, the sensor's ADC and noise, and for the NN its delay)
    run for the test's scenario length."""
    # The teacher reads the same ADC and noise on its sensed Vout; a computation delay is the NN's alone.
    deploy = {"adc_bits": test.adc_bits, "noise_mV": test.noise_mV, "noise_seed": test.noise_seed}
    if controller == "nn":
        deploy["delay_periods"] = test.delay_periods
    p = dataclasses.replace(corner.params(), **(parts or {}), **deploy)
    if test.scenario == "fra":
        return p
    return scenario_params(p, test.scenario, test.settings)


def draw_parts(test: Test, corner: Corner) -> list[dict[str, float]]:
    """The part values of each draw of the test's variation at the corner (none: one cell at nominal parts)."""
    if test.variation is None:
        return [{}]
    nominal = nominal_parts(corner)
    return [{k: nominal[k] * f for k, f in draw.items()} for draw in test.variation.factors()]


def cell_definition(test: Test, corner: Corner, controller: str, actor_id: str, simulator: str,
                    parts: dict | None = None) -> str:
    """What a cell's result depends on (not its limits: verdicts are taken again from stored figures)."""
    from .. import __version__
    from ..evaluation.figures import figures_of
    return json.dumps({"buckbi": __version__, "scenario": test.scenario, "settings": test.settings,
                       "figures": list(figures_of(test.scenario)),  # a figure added since: the cell runs again
                       "weights": test.weights if controller == "nn" else "",
                       "deploy": [test.adc_bits, test.delay_periods] if controller == "nn" else
                       ([test.adc_bits] if test.adc_bits else []),
                       "noise": [test.noise_mV, test.noise_seed],
                       "band_pct": test.band_pct, "corner": [corner.vin, corner.vref, corner.ro, corner.Lo],
                       **({"converter": corner.converter.record()} if corner.converter is not None else {}),
                       "parts": parts or {}, "controller": controller,
                       "actor": actor_id if controller == "nn" else "", "simulator": simulator}, sort_keys=True)


def cell_hash(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:16]
