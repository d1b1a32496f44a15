"""A buck as data: power stage, switching frequency, sensing range, operating ranges and its teacher (values given, or
a crossover and phase margin the k-factor method meets), read from a TOML file (``--converter FILE``). The
reference's buck is shipped as one (``reference.toml``); every value is checked, each error names the key and the fix.
"""
from __future__ import annotations

import json
import math
import numbers
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ...contract import EpisodeError

TOPOLOGIES = ("buck",)
HERE = Path(__file__).resolve().parent
REFERENCE_FILE = HERE / "reference.toml"
EXAMPLES = {"reference": REFERENCE_FILE, "buck-48v": HERE / "buck48v.toml"}  # shipped files, by name
# [converter]'s numbers: key -> (what it is, unit, lowest sensible, highest sensible)
STAGE = {
    "fsw": ("switching and control frequency", "Hz", 1e3, 10e6),
    "vmax": ("full scale of the sensed voltages", "V", 1.0, 1e4),
    "L1": ("output inductor", "H", 1e-9, 1.0),
    "RL1": ("the inductor's resistance", "Ohm", 1e-6, 100.0),
    "C1": ("output capacitor", "F", 1e-9, 1.0),
    "ESR": ("the capacitor's series resistance", "Ohm", 1e-6, 100.0),
    "ESL": ("the capacitor's series inductance", "H", 1e-15, 1e-3),
    "Ron": ("switch and diode on-resistance", "Ohm", 1e-6, 100.0),
    "soft_start_ms": ("the reference profile's ramp to vref", "ms", 1e-3, 1e4),
}
RANGE_KEYS = {"vin": "V", "vref": "V", "ro": "Ohm", "Lo": "H"}
DRAW_ORDER = ("vin", "ro", "Lo", "vref")  # the seed's order of the random draws
REFERENCE_NOMINAL = {"vin": 200.0, "vref": 100.0, "ro": 20.0, "Lo": 50e-6}  # the reference's schematic point
TEACHER_VALUES = ("g", "fz1", "fz2", "fp1", "fp2")
TEACHER_TARGET = ("crossover_Hz", "phase_margin_deg")


class ConverterError(ValueError):
    """A converter file that cannot describe a buck buckbi can run; the message names the key and the fix."""


@dataclass(frozen=True)
class Teacher:
    """The Type-III compensator's values: g sets the integrator's gain (C1c = C3/g), zeros fz1, fz2 and poles fp1,
    fp2 in Hz, as on the reference schematic."""

    g: float
    fz1: float
    fz2: float
    fp1: float
    fp2: float

    def values(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in TEACHER_VALUES}


@dataclass(frozen=True)
class Converter:
    """One buck: its power stage, clock, sensing range, operating ranges and teacher (SI units; soft start in ms)."""

    name: str
    fsw: float
    vmax: float
    L1: float
    RL1: float
    C1: float
    ESR: float
    ESL: float
    Ron: float
    soft_start_ms: float
    ranges: dict = field(default_factory=dict)  # vin, vref, ro, Lo -> (low, high)
    teacher: Teacher | None = None
    design_target: tuple[float, float] | None = None  # (crossover Hz, phase margin deg) the file asks the teacher for
    topology: str = "buck"
    source: str = ""  # the file it was read from

    @property
    def centre(self) -> dict[str, float]:
        """The ranges' centre: arithmetic in vin and vref, geometric in ro and Lo (they span decades)."""
        r = self.ranges
        return {"vin": sum(r["vin"]) / 2, "vref": sum(r["vref"]) / 2, "ro": math.sqrt(r["ro"][0] * r["ro"][1]),
                "Lo": math.sqrt(r["Lo"][0] * r["Lo"][1])}

    @property
    def nominal(self) -> dict[str, float]:
        """Where an axis a command leaves out stays: the reference's schematic point (vin 200 V, vref 100 V, ro 20 Ohm,
        Lo 50 uH) for the reference buck, the ranges' centre for any other."""
        if is_reference(self):
            return dict(REFERENCE_NOMINAL)
        return self.centre

    def random_point(self, rng, **fixed):
        """An operating point drawn uniformly from the ranges, in the seed's order (vin, ro, Lo, vref): for the
        reference buck the very draws of ``EpisodeParams.random``."""
        return self.params(**{k: float(rng.uniform(*self.ranges[k])) for k in DRAW_ORDER}, **fixed)

    episode_class = None  # spec.EpisodeParams, registered by spec.py (the package imports it: no import cycle)

    def params(self, **point):
        """An EpisodeParams of this converter (its stage and teacher) at an operating point (vin, vref, ro, Lo, ...)."""
        return type(self).episode_class(**(self.stage_fields() | point))

    def stage_fields(self) -> dict:
        """The EpisodeParams fields this converter sets (everything but the operating point)."""
        if self.teacher is None:
            raise ConverterError(f"converter {self.name}: its teacher is not designed yet (load it with "
                                 "load_converter, which designs it)")
        return {"fsw": self.fsw, "vmax": self.vmax, "L1": self.L1, "RL1": self.RL1, "C1": self.C1, "ESR": self.ESR,
                "ESL": self.ESL, "Ron": self.Ron, "converter": self.name, **self.teacher.values()}

    def record(self) -> dict:
        """What a network trained for this converter records (checkpoint meta): enough to tell converters apart."""
        return {"name": self.name, **{k: getattr(self, k) for k in STAGE}, **(self.teacher.values() if self.teacher
                                                                                else {})}


def _where(path: str) -> str:
    return f"converter file {path}" if path else "converter file"


def _number(table: dict, key: str, where: str, low: float | None = None, high: float | None = None,
            what: str = "", unit: str = "") -> float:
    if key not in table:
        raise ConverterError(f"{where}: {key} is missing: give {what or key}" + (f" in {unit}" if unit else ""))
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConverterError(f"{where}: {key} = {value!r} is not a number: write it as one, e.g. {key} = 1e-6")
    value = float(value)
    if value <= 0:
        raise ConverterError(f"{where}: {key} = {value:g} must be > 0" + (f" ({what}, {unit})" if what else ""))
    if low is not None and not low <= value <= (high if high is not None else math.inf):
        raise ConverterError(f"{where}: {key} = {value:g} {unit} is outside {low:g}..{high:g} {unit}, where a "
                             f"{what} of a buck buckbi runs lies: check its unit (SI: H, F, Ohm, Hz)")
    return value


def _unknown(table: dict, known, where: str, section: str) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise ConverterError(f"{where}: [{section}] has unknown key(s) {', '.join(extra)}; the keys are "
                             f"{', '.join(known)}")


def parse_converter(data: dict, source: str = "") -> Converter:
    """A Converter from a converter file's tables (the teacher as given; ``load_converter`` designs a target)."""
    where = _where(source)
    if not isinstance(data, dict):
        raise ConverterError(f"{where}: expected tables [converter], [ranges] and [teacher]")
    _unknown(data, ("converter", "ranges", "teacher"), where, "top level")
    for section in ("converter", "ranges", "teacher"):
        if not isinstance(data.get(section), dict):
            raise ConverterError(f"{where}: the table [{section}] is missing (see buckbi/converters/buck/"
                                 f"reference.toml for one that works)")
    c, r, t = data["converter"], data["ranges"], data["teacher"]
    _unknown(c, ("name", "topology", *STAGE), where, "converter")
    name = c.get("name")
    if not isinstance(name, str) or not name.strip() or any(ch in name for ch in "/\\\n\t"):
        raise ConverterError(f"{where}: [converter] name = {name!r}: give a short name, e.g. name = \"buck-48v\"")
    topology = c.get("topology", None)
    if topology is None:
        raise ConverterError(f"{where}: [converter] topology is missing: write topology = \"buck\"")
    if topology not in TOPOLOGIES:
        raise ConverterError(f"{where}: topology {topology!r} is not one buckbi runs; the topologies there are: "
                             f"{', '.join(TOPOLOGIES)}")
    stage = {k: _number(c, k, f"{where}: [converter]", lo, hi, what, unit) for k, (what, unit, lo, hi) in STAGE.items()}
    _unknown(r, tuple(RANGE_KEYS), where, "ranges")
    ranges = {}
    for key, unit in RANGE_KEYS.items():
        pair = r.get(key)
        if (not isinstance(pair, list) or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) for v in pair)):
            raise ConverterError(f"{where}: [ranges] {key} = {pair!r}: give [low, high] in {unit}, e.g. "
                                 f"{key} = [1, 2]")
        lo, hi = map(float, pair)
        if not 0 < lo <= hi:
            raise ConverterError(f"{where}: [ranges] {key} = [{lo:g}, {hi:g}]: need 0 < low <= high ({unit})")
        ranges[key] = (lo, hi)
    if ranges["vin"][1] > stage["vmax"]:
        raise ConverterError(f"{where}: the highest vin ({ranges['vin'][1]:g} V) is above vmax ({stage['vmax']:g} V), "
                             "the sensed voltages' full scale: raise vmax or lower [ranges] vin")
    if ranges["vref"][1] >= ranges["vin"][1]:
        raise ConverterError(f"{where}: [ranges] vref reaches {ranges['vref'][1]:g} V, not below the highest vin "
                             f"({ranges['vin'][1]:g} V): a buck only steps down; lower vref's high end")
    if stage["vmax"] > 1000 * ranges["vref"][0]:
        raise ConverterError(f"{where}: vmax ({stage['vmax']:g} V) is over 1000 x the lowest vref "
                             f"({ranges['vref'][0]:g} V): the network would read it below a thousandth of full scale; "
                             "lower vmax to about the highest vin")
    f0 = 1 / (2 * math.pi * math.sqrt(stage["L1"] * stage["C1"]))
    if f0 >= stage["fsw"] / 2:
        raise ConverterError(f"{where}: the LC filter's resonance ({f0:.3g} Hz) is not below half fsw "
                             f"({stage['fsw'] / 2:.3g} Hz): it does not filter the switching; raise L1 or C1, or fsw")
    given = [k for k in TEACHER_VALUES if k in t]
    target = [k for k in TEACHER_TARGET if k in t]
    _unknown(t, TEACHER_VALUES + TEACHER_TARGET, where, "teacher")
    if given and target:
        raise ConverterError(f"{where}: [teacher] gives both values ({', '.join(given)}) and a design target "
                             f"({', '.join(target)}): keep one")
    teacher = None
    if target or not given:
        missing = [k for k in TEACHER_TARGET if k not in t]
        if missing:
            raise ConverterError(f"{where}: [teacher] needs either g, fz1, fz2, fp1, fp2 or crossover_Hz and "
                                 f"phase_margin_deg; missing {', '.join(missing)}")
        fc = _number(t, "crossover_Hz", f"{where}: [teacher]", what="crossover", unit="Hz")
        pm = _number(t, "phase_margin_deg", f"{where}: [teacher]", what="phase margin", unit="deg")
        if fc > stage["fsw"] / 5:
            raise ConverterError(f"{where}: [teacher] crossover_Hz = {fc:g} is above fsw/5 ({stage['fsw'] / 5:g} Hz), "
                                 "where a sampled loop's delay takes the phase: lower it")
        if not 20 <= pm <= 90:
            raise ConverterError(f"{where}: [teacher] phase_margin_deg = {pm:g}: give 20..90 degrees")
        target_pair = (fc, pm)
    else:
        missing = [k for k in TEACHER_VALUES if k not in t]
        if missing:
            raise ConverterError(f"{where}: [teacher] gives {', '.join(given)} but not {', '.join(missing)}: give all "
                                 "five values, or crossover_Hz and phase_margin_deg instead")
        v = {k: _number(t, k, f"{where}: [teacher]", what="Type-III value", unit="Hz" if k != "g" else "")
             for k in TEACHER_VALUES}
        if not v["fz1"] <= v["fz2"] < v["fp1"] <= v["fp2"]:
            raise ConverterError(f"{where}: [teacher] needs fz1 <= fz2 < fp1 <= fp2 (got {v['fz1']:g}, {v['fz2']:g}, "
                                 f"{v['fp1']:g}, {v['fp2']:g} Hz): a Type III's zeros lie below its poles")
        teacher, target_pair = Teacher(**v), None
    return Converter(name=name.strip(), topology=topology, ranges=ranges, source=source, teacher=teacher,
                     design_target=target_pair, **stage)


def read_converter_file(path: str | Path) -> dict:
    """A converter file's tables; a missing or malformed file is a ConverterError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConverterError(f"converter file {path} does not exist; write one (buckbi/converters/buck/reference.toml "
                             "is an example) or leave --converter out for the reference buck")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConverterError(f"converter file {path} is not valid TOML: {err}") from None


@lru_cache(maxsize=1)
def reference() -> Converter:
    """The reference's buck (250 uH, 220 uF, 50 kHz, 250 V full scale, its Type-III values as given)."""
    conv = parse_converter(read_converter_file(REFERENCE_FILE), str(REFERENCE_FILE))
    assert conv.teacher is not None, "reference.toml gives the teacher's values"
    return conv


def is_reference(conv: Converter | None) -> bool:
    """None or the reference buck's values (under any file name): what every command ran before converter files."""
    return conv is None or conv.record() == reference().record()


NETLIST_NOTE = "buckbi converter: "  # an exported netlist's header line recording its converter (JSON)
_NOTE_LINE = re.compile(r"^\*\s*" + re.escape(NETLIST_NOTE) + r"(\{.*\})\s*$", re.MULTILINE)


def netlist_note(record: dict) -> str:
    """The header comment (without its '* ') that records ``record`` (``Converter.record()``) in a netlist."""
    return NETLIST_NOTE + json.dumps(record, sort_keys=True)


def recorded_in_netlist(text: str, where: str = "netlist") -> dict | None:
    """The converter a netlist's header records (None: no such line, as in every reference-buck export)."""
    m = _NOTE_LINE.search(text)
    if m is None:
        return None
    try:
        record = json.loads(m.group(1))
    except json.JSONDecodeError as err:
        raise ConverterError(f"{where}: its '* {NETLIST_NOTE}' line is not JSON ({err}); delete the line or export "
                             "the network again") from None
    if not isinstance(record, dict) or "name" not in record:
        raise ConverterError(f"{where}: its '* {NETLIST_NOTE}' line names no converter; delete the line or export "
                             "the network again")
    return record


def check_same_converter(recorded: dict | None, conv: Converter, what: str, allow: bool = False,
                         flag: str = "--allow-other-converter") -> None:
    """Refuse to run a network trained for one converter on another, unless ``allow`` (``flag``, named in the error)."""
    if recorded is None or allow:
        return
    mine = conv.record()
    differ = [k for k in mine if k != "name" and k in recorded
              and not math.isclose(float(recorded[k]), float(mine[k]), rel_tol=1e-9)]
    if differ or recorded.get("name", conv.name) != conv.name:
        raise EpisodeError(f"{what} was trained for converter {recorded.get('name')!r}, not {conv.name!r} "
                           f"({', '.join(differ) or 'its name'} differ): a network imitates one teacher on one "
                           f"power stage; pass {flag} to run it anyway")
