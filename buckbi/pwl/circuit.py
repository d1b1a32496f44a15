"""The gyms' component values, timing and scenario signals, read from ``circuits/parts`` (one truth for SPICE and
the fast model)."""
from __future__ import annotations

import math
import re
from decimal import Decimal
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..converters.buck.circuits import circuits_dir
from ..converters.buck.scenarios import Scenario

PARTS = circuits_dir() / "parts"
_SUFFIX = {"t": 12, "g": 9, "meg": 6, "k": 3, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15}  # powers of ten
_NUMBER = re.compile(r"(?<![\w.])(\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)(meg|[tgkmunpf])?[a-z]*", re.I)


class CircuitParseError(ValueError):
    """A value the fast simulator needs is missing from circuits/parts or no longer has the expected form."""


def spice_eval(expr: str, params: dict[str, float]) -> float:
    """Value of a SPICE number or ``{expression}`` (suffixes, .param names, min/max/floor/abs)."""
    text = expr.strip().strip("{}").replace("{", "(").replace("}", ")")  # inner {name}: its value
    # Decimal scaling, as a SPICE reader does: 220u is 2.2e-4 exactly, not 220 * 1e-6.
    text = _NUMBER.sub(lambda m: repr(float(Decimal(m.group(1)).scaleb(_SUFFIX.get((m.group(2) or "").lower(), 0)))),
                       text)
    names = {k.lower(): v for k, v in params.items()} | {"min": min, "max": max, "floor": math.floor, "abs": abs}
    try:
        return float(eval(text.lower(), {"__builtins__": {}}, names))  # noqa: S307 - arithmetic over known names
    except Exception as err:
        raise CircuitParseError(f"cannot evaluate {expr!r}: {err}") from None


def _lines(name: str, parts: Path = PARTS) -> list[str]:
    path = parts / name
    if not path.exists():
        raise CircuitParseError(f"{path} is missing")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("*")]


def _find(lines: list[str], pattern: str, what: str) -> re.Match:
    for ln in lines:
        m = re.match(pattern, ln, re.IGNORECASE)
        if m:
            return m
    raise CircuitParseError(f"circuits/parts: {what} not found (expected a line matching {pattern!r})")


def _params(lines: list[str], params: dict[str, float]) -> dict[str, float]:
    out = dict(params)
    for ln in lines:
        if ln.lower().startswith(".param"):
            for name, value in re.findall(r"(\w+)\s*=\s*(\{[^}]*\}|\S+)", ln[6:]):
                out[name] = spice_eval(value, out)
    return out


def _model(lines: list[str], name: str, params: dict[str, float]) -> dict[str, float]:
    m = _find(lines, rf"\.model\s+{name}\s+\w+\s*\((.*)\)", f".model {name}")
    return {k.lower(): spice_eval(v, params) for k, v in re.findall(r"(\w+)\s*=\s*(\S+)", m.group(1))}


def _value(lines: list[str], element: str, params: dict[str, float]) -> float:
    m = _find(lines, rf"{element}\s+\S+\s+\S+\s+(\{{[^}}]*\}}|\S+)", f"element {element}")
    return spice_eval(m.group(1), params)


@dataclass(frozen=True)
class GymCircuit:
    """Everything the fast model takes from circuits/parts, for one switching frequency (SI units)."""

    L: float
    RL: float
    C: float
    Rc: float
    Lc: float  # capacitor ESL: read for the record; its tens-of-MHz resonance is left out of the fast model
    ron: float
    roff: float
    switch_vt: float
    diode_is: float
    diode_n: float
    diode_rs: float
    comparator_gain: float
    period: float
    t_ctrl: float  # first ctrlclk rising edge starts here (and every period after)
    edge: float  # clock rise/fall time
    pwm_delay: float  # pwmclk rises this long after ctrlclk
    master_vt: float  # a hold's master opens when its clock rises through this
    slave_vt: float  # its slave copies when the clock rises through this
    saw_td: float
    saw_tr: float
    saw_tf: float
    saw_pw: float
    R1: float
    C1: float
    R2: float
    C2: float
    R3: float
    C3: float
    opamp_gm: float
    opamp_r: float
    opamp_c: float
    clamp_hi: float
    clamp_lo: float
    clamp_is: float
    clamp_n: float

    @property
    def saw_period(self) -> float:
        return self.period


# Elements of the parts and what the fast model does with each (a new element fails the drift test until it is
# modelled here or listed as left out).
MODELLED = {"VSTART": "start gate (holds at 0 at t = 0)", "S1": "switch", "D1": "diode", "L1": "L",
            "RL1": "RL", "C1": "C", "RC1": "Rc", "Bctrl": "ctrlclk", "Bpwm": "pwmclk", 
            "VSAW": "saw", "Bcmp": "comparator", 
            "Bfb": "fb", "Brefn": "refn", "RT1": "R1", "RT2": "R2", "RT3": "R3", "CT1": "C1", "CT2": "C2",
            "CT3": "C3", "GOA": "op-amp gm", "ROI": "op-amp r", "COI": "op-amp c", "DOH": "clamp", "VOH": "clamp",
            "DOL": "clamp", "VOL": "clamp", "BOA": "output clamp", "SM": "hold", "CM": "hold", "EB": "hold",
            "SS": "hold", "CS": "hold", "EQ": "hold"}
LEFT_OUT = {"LC1": "capacitor ESL (tens of MHz)", "CL2": "1 pF across Lo (tens of MHz)",
            "VBRK": "ngspice breakpoints only (no node uses it)", "RBRK": "its load"}


def part_elements(parts: Path = PARTS) -> list[str]:
    """Element names in the parts the fast model covers (buck, teacher, hold; scenario parts: scenario_signals)."""
    names = []
    for part in ("buck.inc", "teacher.inc", "hold.inc"):
        for ln in _lines(part, parts):
            if not ln.startswith((".", "+")):
                names.append(ln.split()[0])
    return names


def read_circuit(params=None, parts: Path = PARTS) -> GymCircuit:
    """Parse circuits/parts/{buck,teacher,hold}.inc with the .params of ``params`` (an EpisodeParams: its converter's
    stage and teacher, its parts; None: the reference buck's), as the parameter file gives them to SPICE."""
    if params is None:
        from ..converters.buck.spec import EpisodeParams
        params = EpisodeParams(vin=2.0, ro=1.0, Lo=1e-6, vref=1.0)
    return read_stage(params.stage_key(), parts)


def read_stage(stage_key: tuple, parts: Path = PARTS) -> GymCircuit:
    """``read_circuit`` for the stage's .param values (``EpisodeParams.stage_key``)."""
    buck, teacher, hold = (_lines(n, parts) for n in ("buck.inc", "teacher.inc", "hold.inc"))
    p = _params(buck, dict(stage_key) | {"vref": 1.0})
    sw, d = _model(buck, "SWHS", p), _model(buck, "DFW", p)
    edge = spice_eval(_find(buck, r"Bctrl .*\)/(\d+\w*)\)+$", "ctrlclk edge time").group(1), p)
    pwm = _find(buck, r"Bpwm .*?min\(buckbi_phase\(time, tctrl\+([^)]+)\), ", "pwmclk phase")
    saw = _find(buck, r"VSAW saw 0 PULSE\(0 1 (\{[^}]*\}) (\{[^}]*\}) (\S+) (\S+) (\{[^}]*\})\)", "saw PULSE")
    cmp_gain = _find(buck, r"Bcmp pwm 0 V=max\(-?[\d.]+, *(\d+)\*\(V\(duty\)-V\(saw\)\)\)", "comparator")
    tp = _params(teacher, p)
    dc = _model(teacher, "DCLAMP", tp)
    lo = _model(hold, "BUCKBI_TRACKLOW", p)
    hi = _model(hold, "BUCKBI_TRACKHIGH", p)
    clamp_hi = _value(teacher, "VOH", tp)
    clamp_lo = _value(teacher, "VOL", tp)
    return GymCircuit(
        L=_value(buck, "L1", p), RL=_value(buck, "RL1", p), C=_value(buck, "C1", p), Rc=_value(buck, "RC1", p),
        Lc=_value(buck, "LC1", p), ron=sw["ron"], switch_vt=sw["vt"], diode_is=d["is"], diode_n=d["n"],
        diode_rs=d["rs"], roff=sw["roff"], comparator_gain=float(cmp_gain.group(1)), period=p["per"], t_ctrl=p["tctrl"], edge=edge,
        pwm_delay=spice_eval(pwm.group(1), p), master_vt=-lo["vt"], slave_vt=hi["vt"],
        saw_td=spice_eval(saw.group(1), p), saw_tr=spice_eval(saw.group(2), p), saw_tf=spice_eval(saw.group(3), p),
        saw_pw=spice_eval(saw.group(4), p),
        R1=_value(teacher, "RT1", tp), C1=_value(teacher, "CT1", tp), R2=_value(teacher, "RT2", tp),
        C2=_value(teacher, "CT2", tp), R3=_value(teacher, "RT3", tp), C3=_value(teacher, "CT3", tp),
        opamp_gm=spice_eval(_find(teacher, r"GOA 0 oi refn inv (\S+)", "op-amp GOA").group(1), tp),
        opamp_r=_value(teacher, "ROI", tp), opamp_c=_value(teacher, "COI", tp),
        clamp_hi=clamp_hi, clamp_lo=clamp_lo, clamp_is=dc["is"], clamp_n=dc["n"])


@dataclass(frozen=True)
class ScenarioSignals:
    """A scenario's parts as the fast model takes them: vin(t), ref(t) and the load, each piecewise linear."""

    vin_t: np.ndarray
    vin_v: np.ndarray
    ref_t: np.ndarray
    ref_v: np.ndarray
    current_load: bool  # True: a current source from out (ld_t, ld_v); False: the R-L load (ro, Lo)
    ld_t: np.ndarray
    ld_v: np.ndarray
    inject: tuple[float, float] | None = None  # (amplitude V, frequency Hz) of the sine added to the sensed Vout

    @property
    def corners(self) -> np.ndarray:
        """Times where an input's slope changes: the propagation splits there."""
        return np.unique(np.concatenate([self.vin_t, self.ref_t, self.ld_t]))


# Elements of the scenario parts and what the fast model makes of each (a new one fails the drift test).
SCENARIO_ELEMENTS = {"V1": "vin source (DC or PWL)", "Bref": "soft start", "Vref": "reference profile (PWL)", "L2": "load Lo", "R1": "load ro",
                     "CL2": "left out: 1 pF across Lo (tens of MHz)", "I1": "current-source load (PWL)",
                     "Vsense": "the sensed Vout: 0 V, or a sine from t = 0 (the loop-gain injection)"}


def _pwl_pairs(text: str, env: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    vals = [spice_eval(v, env) for v in text.split()]
    if len(vals) < 2 or len(vals) % 2:
        raise CircuitParseError(f"a PWL needs (time, value) pairs, got {text!r}")
    return np.array(vals[0::2]), np.array(vals[1::2])


def _source(lines: list[str], element: str, env: dict[str, float], where: str) -> tuple[np.ndarray, np.ndarray]:
    """A DC (``{expr}``) or PWL independent source as (times, values); DC is one point."""
    m = _find(lines, rf"{element}\s+\S+\s+\S+\s+PWL\((.*)\)$|{element}\s+\S+\s+\S+\s+(\{{[^}}]*\}}|\S+)$",
              f"{where}: source {element}")
    if m.group(1) is not None:
        return _pwl_pairs(m.group(1), env)
    return np.zeros(1), np.array([spice_eval(m.group(2), env)])


def _sense(lines: list[str], env: dict[str, float], where: str) -> tuple[float, float] | None:
    """The sense part's series source: 0 V (None), or SIN(0 amplitude frequency) from t = 0."""
    m = _find(lines, r"Vsense vsense out (?:SIN\(([^)]*)\)|(\S+))$", f"{where}: Vsense vsense out ...")
    if m.group(2) is not None:
        if spice_eval(m.group(2), env) != 0.0:
            raise CircuitParseError(f"{where}: a DC offset on the sensed output is not modelled; use 0 or SIN(...)")
        return None
    args = [spice_eval(a, env) for a in m.group(1).split()]
    if len(args) != 3 or args[0] != 0.0:
        raise CircuitParseError(f"{where}: the fast model takes SIN(0 amplitude frequency) only, got SIN({m.group(1)})")
    return args[1], args[2]


def scenario_signals(scenario: Scenario, params, parts: Path = PARTS,
                     settings: dict[str, float] | None = None) -> ScenarioSignals:
    """Parse the scenario's load, input-source, reference and sense parts for the operating point ``params``
    (and the scenario's settings, e.g. the injection's finj and ainj)."""
    load, source, ref, sense = (_lines(n, parts) for n in scenario.parts)
    for part, lines in zip(scenario.parts, (load, source, ref, sense)):
        for ln in lines:
            name = ln.split()[0]
            if not ln.startswith((".", "+")) and name not in SCENARIO_ELEMENTS:
                raise CircuitParseError(f"circuits/parts/{part}: element {name} is not one the fast model knows "
                                        f"({', '.join(SCENARIO_ELEMENTS)}); model it in buckbi.pwl or run SPICE")
    env = {k: float(v) for k, v in params.spice_params().items()} | scenario.resolve_settings(settings)
    vin_t, vin_v = _source(source, "V1", _params(source, env), scenario.source)
    if any(ln.startswith("Vref") for ln in ref):  # a PWL reference (the reference step)
        ref_t, ref_v = _source(ref, "Vref", _params(ref, env), scenario.reference)
    else:
        m = _find(ref, r"Bref ref 0 V=min\(\{vref\}, max\(0, time-(\w+)\)\*\{vref\}/(\([^()]*\)|\w+)\)", "soft start")
        delay, ramp = spice_eval(m.group(1), env), spice_eval(m.group(2), env)
        ref_t, ref_v = np.array([delay, delay + ramp]), np.array([0.0, params.vref])
    current = any(ln.startswith("I1") for ln in load)
    if current:
        ld_t, ld_v = _source(load, "I1", _params(load, env), scenario.load)
    else:
        _find(load, r"R1 \S+ 0 \{ro\}", f"{scenario.load}: the R-L load's R1 {{ro}}")
        _find(load, r"L2 out \S+ \{Lo\}", f"{scenario.load}: the R-L load's L2 {{Lo}}")
        ld_t = ld_v = np.zeros(0)
    return ScenarioSignals(vin_t, vin_v, ref_t, ref_v, current, ld_t, ld_v, _sense(sense, env, scenario.sense))
