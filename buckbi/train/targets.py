"""The loop-gain term's target at one operating point: the teacher's T(f) by POP + AC, its gain raised where its
phase margin is short of the one asked, and the per-frequency weights of the mismatch."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..converters.buck.spec import EpisodeParams


def crossover_weights(T: np.ndarray, f_Hz: np.ndarray, boost: float, octaves: float = 1.0) -> np.ndarray:
    """Per-frequency weights of the mismatch: 1, plus ``boost`` x a Gaussian window (``octaves`` its sigma) around
    T's first unity-gain crossover, where the margins are read; mean 1. Uniform where boost is 0 or |T| never
    crosses 1."""
    w = np.ones(len(f_Hz))
    mag = np.log(np.abs(T))
    below = np.flatnonzero((mag[:-1] >= 0) & (mag[1:] < 0))
    if boost and len(below):
        i = below[0]  # log-linear between the grid's two points either side of |T| = 1
        lf = np.log2(f_Hz[i]) + mag[i] / (mag[i] - mag[i + 1]) * np.log2(f_Hz[i + 1] / f_Hz[i])
        w = w + boost * np.exp(-0.5 * ((np.log2(f_Hz) - lf) / octaves) ** 2)
    return w / w.mean()


GAIN_STEPS = 2.0 ** (np.arange(17) / 4)  # the loop-gain factors raised_gain tries: 1 .. 16 in quarter octaves


def raised_gain(f_Hz: np.ndarray, T: np.ndarray, target_deg: float) -> float:
    """The least factor k of GAIN_STEPS by which the loop gain ``T`` is raised so that its phase margin reaches
    ``target_deg`` (python-control's reading on the grid ``f_Hz``) without losing gain margin below the lesser of T's
    own and 6 dB; where none reaches it, the one with the most margin; 1 where T already has it or never crosses 1.
    A plant whose gain falls (a buck in discontinuous conduction at light load) pulls the crossover below the
    compensator's zeros, where its phase boost is gone: more gain moves the crossover back up into it."""
    from ..loopgain.margins import margins
    base = margins(f_Hz, T)
    if not np.isfinite(base.phase_margin_deg) or base.phase_margin_deg >= target_deg:
        return 1.0
    floor_db = min(6.0, base.gain_margin_dB) if np.isfinite(base.gain_margin_dB) else 6.0
    best, best_pm = 1.0, base.phase_margin_deg
    for k in GAIN_STEPS[1:]:
        m = margins(f_Hz, k * T)
        if not np.isfinite(m.phase_margin_deg) or (np.isfinite(m.gain_margin_dB) and m.gain_margin_dB < floor_db):
            continue
        if m.phase_margin_deg >= target_deg:
            return float(k)
        if m.phase_margin_deg > best_pm:
            best, best_pm = float(k), m.phase_margin_deg
    return best


def teacher_target(params: EpisodeParams, f_Hz: np.ndarray, crossover_boost: float = 0.0,
                   target_margin_deg: float = 0.0):
    """The loop-gain term's target at one operating point: (the point without sensor noise and ADC, the teacher's
    LoopGain, the gain factor, the target T(f) and the per-frequency weights as tensors)."""
    from ..loopgain.pop import loop_gain
    clean = replace(params, noise_mV=0.0, adc_bits=0)  # the small-signal law, not the sensor
    # the margins are read on a grid from a 20th of the band's lowest frequency (light-load crossovers lie low)
    wide = np.geomspace(f_Hz[0] / 20, clean.fsw / 2, 160) if target_margin_deg else np.empty(0)
    teacher = loop_gain("teacher", None, replace(clean, delay_periods=0), np.concatenate([f_Hz, wide]))
    T = teacher.T[:len(f_Hz)]
    gain = raised_gain(wide, teacher.T[len(f_Hz):], target_margin_deg) if target_margin_deg else 1.0
    return (clean, teacher, gain, torch.from_numpy(gain * T),
            torch.from_numpy(crossover_weights(gain * T, f_Hz, crossover_boost)))


def mismatch(T_nn: torch.Tensor, T_teacher: torch.Tensor, weights: torch.Tensor | None = None,
             dim: int | None = None) -> torch.Tensor:
    """The loop-gain mismatch: the (weighted) mean over f of |ln(T_nn / T_teacher)|^2, gain error in nepers and
    phase error in radians, squared. The learner's term and the model selection's score both use it."""
    ratio = T_nn / T_teacher
    terms = torch.log(ratio.abs()) ** 2 + torch.angle(ratio) ** 2
    terms = terms if weights is None else weights * terms
    return terms.mean() if dim is None else terms.mean(dim)  # dim -1: one value per point of a stack
