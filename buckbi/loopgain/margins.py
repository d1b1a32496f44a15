"""Crossover, phase margin and gain margin from measured frequency-response data, with python-control."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Margins:
    """Figures of one loop gain T(f); NaN where the figure does not exist in the measured range."""

    crossover_Hz: float  # |T| = 1 (the lowest such frequency python-control reports)
    phase_margin_deg: float  # 180 + phase of T at the crossover
    gain_margin_dB: float  # -|T| in dB where the phase of T crosses -180 degrees
    gain_margin_Hz: float

    def row(self) -> dict[str, float]:
        return {"crossover_Hz": self.crossover_Hz, "phase_margin_deg": self.phase_margin_deg,
                "gain_margin_dB": self.gain_margin_dB, "gain_margin_Hz": self.gain_margin_Hz}


def margins(f_hz: np.ndarray, T: np.ndarray) -> Margins:
    """Margins of the frequency-response data ``T`` at ``f_hz`` (python-control ``frd`` + ``stability_margins``,
    which interpolates between the measured points)."""
    import control
    f_hz, T = np.asarray(f_hz, float), np.asarray(T, complex)
    ok = np.isfinite(T)
    if ok.sum() < 2:
        return Margins(math.nan, math.nan, math.nan, math.nan)
    sys = control.frd(T[ok], 2 * math.pi * f_hz[ok])
    gm, pm, _, wpc, wgc, _ = control.stability_margins(sys)

    def hz(w) -> float:
        return float(w) / (2 * math.pi) if w is not None and np.isfinite(w) else math.nan

    gm_db = 20 * math.log10(gm) if gm is not None and np.isfinite(gm) and gm > 0 else math.nan
    crossover = hz(wgc)
    return Margins(crossover, float(pm) if np.isfinite(crossover) else math.nan, gm_db,
                   hz(wpc) if np.isfinite(gm_db) else math.nan)
