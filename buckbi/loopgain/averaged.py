"""The teacher loop's averaged small-signal model, built from the circuit values (an independent check of the
measured loop gain; it leaves out the sampled-data effect of the output ripple on the duty hold).

T(s) = Gvd(s) H(s) K(s) / vmax: the buck in continuous conduction (L1 and its resistance plus the switch's or the
diode's, C1 with ESR and ESL, the R-L load), the duty hold as a zero-order hold H(s) = (1 - e^-sT)/(sT) with the
turn-off d T after the sample, the saw's unit gain, and the Type-III network with its op-amp (DC gain 1e5, one pole) K(s) = (Zf/Zi) / (1 + (1 + Zf/Zi)/A).
"""
from __future__ import annotations

import numpy as np

from ..converters.buck.spec import EpisodeParams
from ..pwl.circuit import GymCircuit, read_circuit
from ..pwl.model import diode_line


def plant(f_hz: np.ndarray, params: EpisodeParams, c: GymCircuit) -> np.ndarray:
    """Gvd: duty to V(out) of the averaged buck in continuous conduction."""
    s = 2j * np.pi * np.asarray(f_hz, float)
    d = params.vref / params.vin
    _, rd = diode_line(c)
    r = c.RL + d * c.ron + (1 - d) * rd  # the series resistance averaged over a period
    zc = c.Rc + 1 / (s * c.C) + s * c.Lc
    zload = params.ro + s * params.Lo
    zo = zc * zload / (zc + zload)
    return params.vin * zo / (zo + s * c.L + r)


def duty_hold(f_hz: np.ndarray, params: EpisodeParams, delay: float = 0.0) -> np.ndarray:
    """A command sampled ``delay`` before the duty hold takes it, held for a period, acting at the turn-off.

    The duty hold samples the command right before the saw's reset and holds it for a period (a zero-order
    hold: sinc magnitude, -wT/2); trailing-edge modulation then moves the turn-off d T after the sample, not T/2:
    the extra e^(-s (d - 1/2) T) (-6.75 degrees at 2.5 kHz for d = 0.875)."""
    s = 2j * np.pi * np.asarray(f_hz, float)
    T, d = 1 / params.fsw, params.vref / params.vin
    return (1 - np.exp(-s * T)) / (s * T) * np.exp(-s * ((d - 0.5) * T + delay))


def type3(f_hz: np.ndarray, c: GymCircuit) -> np.ndarray:
    """The Type-III network with its op-amp: K = (Zf/Zi) / (1 + (1 + Zf/Zi)/A) (the inverting sign left out)."""
    s = 2j * np.pi * np.asarray(f_hz, float)
    zi = c.R2 * (c.R3 + 1 / (s * c.C3)) / (c.R2 + c.R3 + 1 / (s * c.C3))
    zf_series = c.R1 + 1 / (s * c.C1)
    zf = zf_series / (1 + s * c.C2 * zf_series)
    a = c.opamp_gm * c.opamp_r / (1 + s * c.opamp_r * c.opamp_c)
    return (zf / zi) / (1 + (1 + zf / zi) / a)


def teacher_loop_gain(f_hz: np.ndarray, params: EpisodeParams, c: GymCircuit | None = None) -> np.ndarray:
    """T(j 2 pi f) of the teacher loop at the operating point (continuous conduction assumed)."""
    c = c or read_circuit(params)
    return plant(f_hz, params, c) * duty_hold(f_hz, params) * type3(f_hz, c) / params.vmax


def linear_nn_loop_gain(f_hz: np.ndarray, params: EpisodeParams, k_error: float,
                        c: GymCircuit | None = None) -> np.ndarray:
    """T of a network whose output is b + k_error * NNin6 (the error (V(vsense) - ref)/vmax held at ctrlclk): the
    NN samples on ctrlclk, the duty hold takes its output pwm_delay later."""
    c = c or read_circuit(params)
    return -k_error * plant(f_hz, params, c) * duty_hold(f_hz, params, c.pwm_delay) / params.vmax
