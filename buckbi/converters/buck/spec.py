"""The buck's operating point (fields, ranges, training draws), its controller I/O and its gyms: one place."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ...contract import EpisodeError, IOContract
from .converter import REFERENCE_NOMINAL, Converter, reference

_REF = reference()  # the reference's buck (reference.toml): what an EpisodeParams is where nothing else is said

N_INPUTS = 19
# NNin1..5 Vo/vmax, 6..10 error/vmax, 11..15 duty (each at t..t-4), 16 vin/vmax, 17 ref/vmax, 18 duty change,
# 19 accumulated error; NNout1 the duty command; ctrlclk's falling edges take the rows; nnpwm the teacher's duty.
IO = IOContract(inputs=tuple(f"NNin{i}" for i in range(1, N_INPUTS + 1)), output="NNout1", clock="ctrlclk",
                label="nnpwm")
SUBCKT = "ActorSubckt"
DUTY_HISTORY = (10, 11, 12, 13, 14)  # NNin11..15's columns in a row: the duties the loop applied, newest first
DUTY_CHANGE = 17  # NNin18's column: NNin11 - NNin12
ACCUMULATOR = 18  # NNin19's column: e/vmax summed once per control period


def accumulator_gain(g: float, fz1: float, fz2: float, fp2: float, fsw: float) -> float:
    """The teacher's duty per unit of NNin19: its Type-III integrator (circuits/parts/teacher.inc: output per second of
    (ref - Vo)/vmax at DC, 1 / (R2 (C1c + C2c)) = 2 pi g fz1 / (1 + fz2 / fp2)) over one control period 1 / fsw."""
    return -2 * math.pi * g * fz1 / ((1 + fz2 / fp2) * fsw)
# The seed notebook's training ranges (SI units), in its draw order.
RANGES = {"vin": (150.0, 250.0), "ro": (5.0, 80.0), "Lo": (20e-6, 100e-6), "vref": (50.0, 150.0)}
AXES = ("vin", "vref", "ro", "Lo")  # the operating point's axes, in the order sweeps and reports show them
NOMINAL = dict(REFERENCE_NOMINAL)  # where an axis a sweep leaves out stays (another converter: Converter.nominal)
# The power stage's parts a tolerance may vary, beside the operating point's ro and Lo: field -> (.param name the
# circuit reads, nominal value, what it is). Both engines read these numbers (buck.inc through the parameter file,
# the fast model from EpisodeParams), so a drawn value moves both alike.
COMPONENTS = {"L1": ("Lbuck", _REF.L1, "output inductor L1 (H)"), "C1": ("Cbuck", _REF.C1, "output capacitor C1 (F)"),
              "ESR": ("Resr", _REF.ESR, "C1's series resistance RC1 (Ohm)")}
# The converter's other values the circuits read as .params (field -> .param name, what it is); the teacher's Type-III
# values (g, fz1, fz2, fp1, fp2) go by their own names (circuits/parts/teacher.inc).
STAGE_PARAMS = {"RL1": ("Rind", "L1's series resistance RL1 (Ohm)"), "ESL": ("Lesl", "C1's series inductance LC1 (H)"),
                "Ron": ("Rsw", "the switch's and the diode's on-resistance (Ohm)")}
TEACHER_PARAMS = ("g", "fz1", "fz2", "fp1", "fp2")
TOLERANCE_PARTS = ("L1", "C1", "ESR", "Lo", "ro")  # what a plan's montecarlo / worstcase may vary
ICRIT_L = 200e-6  # the seed's Iout/Icrit takes L = 200 uH (the circuit's L1 is 250 uH): kept for its log column


@dataclass(frozen=True)
class Gym:
    """A closed loop: who drives the duty, whether the network is in the circuit, whether the teacher labels."""

    name: str
    network: bool  # the NN's subcircuit is instantiated (its inputs and NNout1 saved)
    labelled: bool  # the teacher runs and its command nnpwm is saved
    command: str  # what drives the duty: "teacher", "nn" (as it is) or "nn_limited" (0..1, the deploy LIMIT)
    description: str

    @property
    def circuit(self) -> str:
        return f"{self.name}.cir"


GYMS = {g.name: g for g in (
    Gym("teacher", False, True, "teacher", "the Type-III compensator alone"),
    Gym("gym1", True, True, "teacher", "the teacher drives, the NN observes (behaviour imitation)"),
    Gym("gym2", True, True, "nn", "the NN drives as it is, the teacher labels"),
    Gym("deploy", True, False, "nn_limited", "the NN alone through the 0..1 limit (evaluation)"),
)}


def get_gym(name: str) -> Gym:
    if name not in GYMS:
        raise EpisodeError(f"unknown gym {name!r}; choose one of {', '.join(GYMS)}")
    return GYMS[name]


@dataclass(frozen=True)
class EpisodeParams:
    """Operating point and length of one episode (SI units: V, Ohm, H, Hz)."""

    vin: float
    ro: float
    Lo: float
    vref: float
    fsw: float = _REF.fsw
    vmax: float = _REF.vmax
    steps: int = 2048
    L1: float = _REF.L1
    C1: float = _REF.C1
    ESR: float = _REF.ESR
    # Deployment of the NN (the analog teacher has neither): an ADC of adc_bits on its sensed Vout and vin (0: ideal),
    # and its output applied delay_periods control periods later.
    adc_bits: int = 0
    delay_periods: int = 0
    noise_mV: float = 0.0  # seeded Gaussian noise (rms) on the sensed Vout, one value per control period
    noise_seed: int = 0
    # The converter's other values (converters/buck/converter.py; the reference's where not given)
    RL1: float = _REF.RL1
    ESL: float = _REF.ESL
    Ron: float = _REF.Ron
    g: float = _REF.teacher.g
    fz1: float = _REF.teacher.fz1
    fz2: float = _REF.teacher.fz2
    fp1: float = _REF.teacher.fp1
    fp2: float = _REF.teacher.fp2
    converter: str = _REF.name

    def __post_init__(self) -> None:
        for name in ("vin", "ro", "Lo", "vref", "fsw", "vmax", *COMPONENTS, *STAGE_PARAMS, *TEACHER_PARAMS):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise EpisodeError(f"EpisodeParams.{name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, float(value))  # numpy scalars too: the parameter file writes repr()
        if not self.vref < self.vin:
            raise EpisodeError(f"vref ({self.vref:g} V) must be below vin ({self.vin:g} V): a buck only steps down")
        if isinstance(self.steps, bool) or not isinstance(self.steps, numbers.Integral) or self.steps < 8:
            raise EpisodeError(f"steps must be an integer >= 8 control periods, got {self.steps!r}")
        object.__setattr__(self, "steps", int(self.steps))
        if isinstance(self.noise_mV, bool) or not isinstance(self.noise_mV, numbers.Real) \
                or not math.isfinite(self.noise_mV) or self.noise_mV < 0:
            raise EpisodeError(f"EpisodeParams.noise_mV = {self.noise_mV!r}: noise is an rms voltage >= 0 mV")
        object.__setattr__(self, "noise_mV", float(self.noise_mV))
        if isinstance(self.noise_seed, bool) or not isinstance(self.noise_seed, numbers.Integral):
            raise EpisodeError(f"EpisodeParams.noise_seed must be a whole number, got {self.noise_seed!r}")
        for name, low in (("adc_bits", 2), ("delay_periods", 0)):
            value = getattr(self, name)
            if (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
                    and value == int(value)):
                value = int(value)
            if not isinstance(value, int) or (value != 0 and value < low) or value < 0:
                what = ("an ADC needs at least 2 bits (0: ideal)" if name == "adc_bits"
                        else "a delay is a whole number of control periods >= 0")
                raise EpisodeError(f"EpisodeParams.{name} = {getattr(self, name)!r}: {what}")
            object.__setattr__(self, name, value)

    @classmethod
    def random(cls, rng: np.random.Generator, **fixed) -> "EpisodeParams":
        """Draw the seed's ranges: vin 150-250 V, ro 5-80 Ohm, Lo 20-100 uH, vref 50-150 V (same order)."""
        drawn = {k: rng.uniform(lo, hi) for k, (lo, hi) in RANGES.items()}
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
        icrit = 0.5 * self.vref * (self.vin - self.vref) / self.fsw / ICRIT_L / self.vin
        return self.vref / self.ro / icrit

    def spice_params(self) -> dict[str, float | int]:
        """The .param values of an episode: the seed's (vin ro Lo vref fsw vmax STEPS), the parts, the converter's other
        values and teacher, the deployment."""
        d = {k: getattr(self, k) for k in ("vin", "ro", "Lo", "vref", "fsw", "vmax")} | {"STEPS": int(self.steps)}
        d |= {param: getattr(self, field) for field, (param, _, _) in COMPONENTS.items()}
        d |= {param: getattr(self, field) for field, (param, _) in STAGE_PARAMS.items()}
        d |= {name: getattr(self, name) for name in TEACHER_PARAMS}
        return d | {"adc_levels": self.adc_levels, "delay_periods": self.delay_periods}

    def stage_key(self) -> tuple:
        """The converter's values the fast model's circuit depends on (its cache key): the .params but the point's."""
        d = self.spice_params()
        return tuple((k, d[k]) for k in ("fsw", *(p for p, _, _ in COMPONENTS.values()),
                                        *(p for p, _ in STAGE_PARAMS.values()), *TEACHER_PARAMS))

    def noise_volts(self) -> np.ndarray:
        """The sensed Vout's noise in each control period k = 0..STEPS+1 (V): N(0, noise_mV), one stream from
        rng([seed]) drawn in period order, so a longer episode starts with the same values."""
        if not self.noise_mV:
            return np.zeros(self.steps + 2)
        return np.random.default_rng([self.noise_seed, 0x4E015E]).normal(0.0, self.noise_mV * 1e-3, self.steps + 2)

    @property
    def adc_levels(self) -> int:
        """Quantisation steps over 0..vmax (2^bits - 1), 0 for an ideal ADC."""
        return 2 ** self.adc_bits - 1 if self.adc_bits else 0

    @property
    def nominal_parts(self) -> bool:
        """True when L1, C1 and ESR are the reference buck's nominal values."""
        return all(getattr(self, k) == v for k, (_, v, _) in COMPONENTS.items())


Converter.episode_class = EpisodeParams  # what Converter.params makes
