"""The teacher designed for a converter by the k-factor method (Venable): the Type III's two zeros at fc/sqrt(k) and
two poles at fc*sqrt(k) give the phase boost the target margin needs at the crossover fc, its gain g sets |T(fc)| = 1.
The plant comes from the averaged model at the ranges' centre; the design is then corrected on the loop gain that
POP + AC measures there (switching and sampling included), as a designer corrects on a measured Bode plot."""
from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from functools import lru_cache
from pathlib import Path

from .converter import EXAMPLES, Converter, ConverterError, Teacher, parse_converter, read_converter_file, reference

log = logging.getLogger("buckbi.converter")
MAX_BOOST_DEG = 160.0  # a Type III's boost tends to 180 degrees as k grows; beyond this the poles and zeros run apart
CORRECTIONS = 6  # at most this many corrections on the measured loop gain
TOLERANCE = (0.02, 1.0)  # stop correcting within 2 % of the crossover and 1 degree of the margin


def k_factor(boost_deg: float) -> float:
    """Venable's k of a Type III for ``boost_deg`` of phase boost at the crossover: tan^2(boost/4 + 45 deg)."""
    return math.tan(math.radians(boost_deg / 4 + 45)) ** 2


def _teacher(k: float, fc: float, g: float) -> Teacher:
    return Teacher(g=float(g), fz1=fc / math.sqrt(k), fz2=fc / math.sqrt(k), fp1=fc * math.sqrt(k), fp2=fc * math.sqrt(k))


def _averaged_T(conv: Converter, teacher: Teacher, f: np.ndarray) -> np.ndarray:
    from ...loopgain.averaged import teacher_loop_gain
    params = replace(conv, teacher=teacher).params(**conv.centre)
    return teacher_loop_gain(f, params)


def measured(conv: Converter, teacher: Teacher, f: np.ndarray | None = None) -> tuple[float, float]:
    """(crossover Hz, phase margin deg) of the teacher loop at the ranges' centre by POP + AC (NaN: none)."""
    from ...loopgain.margins import margins
    from ...loopgain.pop import loop_gain
    if f is None:
        f = np.geomspace(conv.fsw / 5e3, conv.fsw / 2.5, 160)
    params = replace(conv, teacher=teacher).params(**conv.centre)
    m = margins(f, loop_gain("teacher", None, params, f).T)
    return m.crossover_Hz, m.phase_margin_deg


def design_teacher(conv: Converter, crossover_Hz: float, phase_margin_deg: float) -> Teacher:
    """The Type-III values that give the converter's teacher loop ``crossover_Hz`` and ``phase_margin_deg`` at the
    ranges' centre; a ConverterError where the power stage does not allow them."""
    from ...loopgain.pop import PopError
    fc, pm = crossover_Hz, phase_margin_deg
    where = f"converter {conv.name}: [teacher] crossover_Hz = {fc:g}, phase_margin_deg = {pm:g}"
    f = np.geomspace(fc / 1e3, fc, 300)  # from where the integrator's -90 degrees dominate, unwrapped up to fc
    unit = _averaged_T(conv, _teacher(1.0, fc, 1.0), f)  # k = 1: the integrator alone, g = 1
    plant_deg = math.degrees(np.unwrap(np.angle(unit))[-1]) + 90.0  # plant, duty hold and modulator
    boost = pm - 90.0 - plant_deg
    if boost > MAX_BOOST_DEG:
        raise ConverterError(f"{where}: the power stage's phase there is {plant_deg:.0f} deg, so the margin needs "
                             f"{boost:.0f} deg of boost, more than a Type III gives ({MAX_BOOST_DEG:.0f}): the "
                             "crossover lies too far beyond the LC resonance and the switching delay; lower "
                             "crossover_Hz or phase_margin_deg")
    if boost < 5.0:
        raise ConverterError(f"{where}: the power stage alone leaves {pm - boost:.0f} deg of margin there, so a Type "
                             f"III's boost is not needed ({boost:.0f} deg): put the crossover above the LC resonance "
                             f"({1 / (2 * math.pi * math.sqrt(conv.L1 * conv.C1)):.3g} Hz) or ask a higher margin")
    gain = 1.0  # the measured loop's correction of the averaged model's gain at fc
    teacher = _design(conv, fc, boost, gain)
    fc_m = pm_m = math.nan
    try:
        for _ in range(CORRECTIONS):
            fc_m, pm_m = measured(conv, teacher)
            if not (np.isfinite(fc_m) and np.isfinite(pm_m)):
                raise PopError(f"no crossover in {conv.fsw / 5e3:g}..{conv.fsw / 2.5:g} Hz")
            log.debug("design %s: crossover %.4g Hz, margin %.2f deg (asked %.4g, %.2f)", conv.name, fc_m, pm_m, fc, pm)
            if abs(fc_m / fc - 1) <= TOLERANCE[0] and abs(pm_m - pm) <= TOLERANCE[1]:
                break
            boost = boost + (pm - pm_m)
            if boost > MAX_BOOST_DEG:
                raise ConverterError(f"{where}: the measured loop needs {boost:.0f} deg of boost, more than a Type III "
                                     f"gives ({MAX_BOOST_DEG:.0f}): lower crossover_Hz or phase_margin_deg")
            gain *= fc / fc_m  # |T| falls about as 1/f at the crossover
            teacher = _design(conv, fc, boost, gain)
        else:
            fc_m, pm_m = measured(conv, teacher)  # the last correction's result
    except PopError as err:  # the switched loop has no stable orbit there: the stage does not allow this target
        raise ConverterError(f"{where}: the teacher designed for it has no stable periodic operating point at the "
                             f"ranges' centre ({err}); the crossover lies too far beyond what the LC filter and the "
                             "switching delay allow: lower crossover_Hz or phase_margin_deg") from None
    if not (abs(fc_m / fc - 1) <= 2 * TOLERANCE[0] and abs(pm_m - pm) <= 2 * TOLERANCE[1]):
        raise ConverterError(f"{where}: after {CORRECTIONS} corrections on the measured loop gain the teacher gives "
                             f"{fc_m:.4g} Hz and {pm_m:.3g} deg: the power stage does not allow this target; lower "
                             "crossover_Hz or phase_margin_deg")
    return teacher


def _design(conv: Converter, fc: float, boost: float, gain: float) -> Teacher:
    """k from the boost; g for |T(fc)| = gain^-1 on the averaged model (K is proportional to g: C1c = C3/g scales
    the whole feedback network), times the measured correction."""
    k = k_factor(boost)
    return _teacher(k, fc, gain / abs(_averaged_T(conv, _teacher(k, fc, 1.0), np.array([fc]))[0]))


def load_converter(path: "str | Path | Converter | None" = None) -> Converter:
    """The converter of a file (None: the reference buck; a shipped name: that file), its teacher designed where
    the file gives a target."""
    if path is None:
        return reference()
    if isinstance(path, Converter):
        return path
    if str(path) in EXAMPLES:
        path = EXAMPLES[str(path)]
    return _load(str(Path(path).resolve()))


@lru_cache(maxsize=16)
def _load(path: str) -> Converter:
    conv = parse_converter(read_converter_file(path), path)
    if conv.teacher is None:
        conv = replace(conv, teacher=design_teacher(conv, *conv.design_target))
    return conv
