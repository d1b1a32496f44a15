"""Exact modal propagation between events (numba): the phi-function steps and the mode-boundary tests the kernel's
event loop uses."""
from __future__ import annotations

import numpy as np

from .jit import kernel as njit_kernel
from .model import EV_DRIVE, EV_OI, TEACHER_MODES

N_T = len(TEACHER_MODES)
# Teacher modes: 0 linear, 1 output at 1, 2 output at 0, 3 oi diode-clamped high, 4 low.


# The kernel's event loop calls only helpers that take scalars (or reads whole arrays by index): numba
# reference-counts, atomically, every array a call takes and every view, which took about half the kernel's time.


@njit_kernel(inline="always")
def pwl_at(times, values, k, n, t):
    """Value and right-hand slope at t of the piecewise-linear signal times/values[k, :n] (constant outside)."""
    if n == 0:
        return 0.0, 0.0
    if t < times[k, 0]:
        return values[k, 0], 0.0
    for i in range(n - 1):
        if t < times[k, i + 1]:
            slope = (values[k, i + 1] - values[k, i]) / (times[k, i + 1] - times[k, i])
            return values[k, i] + slope * (t - times[k, i]), slope
    return values[k, n - 1], 0.0


@njit_kernel
def modal_factors(lam, tau, e, p1, p2):
    """e^(lam tau), phi1 = (e - 1) / lam and phi2 = (e - 1 - lam tau) / lam^2 per mode: z(tau) = e z0 + phi1 b0 +
    phi2 b1, so each is ``mode_at`` with one of z0, b0, b1 set to 1."""
    for i in range(len(lam)):
        e[i] = mode_at(lam[i], 1.0 + 0j, 0j, 0j, tau)
        p1[i] = mode_at(lam[i], 0j, 1.0 + 0j, 0j, tau)
        p2[i] = mode_at(lam[i], 0j, 0j, 1.0 + 0j, tau)


@njit_kernel
def modal_step(lam, z0, b0, b1, tau, out):
    """z(tau) for dz/dt = lam z + b0 + b1 s, exact (phi functions, series near lam tau = 0)."""
    for i in range(len(lam)):
        out[i] = mode_at(lam[i], z0[i], b0[i], b1[i], tau)


@njit_kernel(inline="always")
def mode_at(lam, z0, b0, b1, tau):
    """One mode of z(tau) for dz/dt = lam z + b0 + b1 s (exact; series near lam tau = 0)."""
    x = lam * tau
    e = np.exp(x)
    if x.real * x.real + x.imag * x.imag < 1e-8:  # |x| < 1e-4
        phi1 = tau * (1.0 + x / 2.0 + x * x / 6.0)
        phi2 = tau * tau * (0.5 + x / 6.0 + x * x / 24.0)
    else:
        phi1 = (e - 1.0) / lam
        phi2 = (e - 1.0 - x) / (lam * lam)
    return e * z0 + b0 * phi1 + b1 * phi2


@njit_kernel(inline="always")
def teacher_exit(tmode, oi, drive, clamp_hi, clamp_lo):
    """The teacher mode the state is in now, given the current one (-1: stays)."""
    if tmode == 0:
        if oi > 1.0:
            return 1
        if oi < 0.0:
            return 2
    elif tmode == 1:
        if oi < 1.0:
            return 0
        if oi > clamp_hi:
            return 3
    elif tmode == 2:
        if oi > 0.0:
            return 0
        if oi < clamp_lo:
            return 4
    elif tmode == 3:
        if drive < 0.0:
            return 1
    elif tmode == 4:
        if drive > 0.0:
            return 2
    return -1


@njit_kernel(inline="always")
def _teacher_margin(tmode, oi, drive, clamp_hi, clamp_lo):
    """How far (in its event function) the teacher is from leaving its mode; the event function it is (tmode < 0:
    no teacher to watch)."""
    if tmode < 0:
        return np.inf, EV_OI
    if tmode == 0:
        return min(1.0 - oi, oi), EV_OI
    if tmode == 1:
        return min(oi - 1.0, clamp_hi - oi), EV_OI
    if tmode == 2:
        return min(-oi, oi - clamp_lo), EV_OI
    if tmode == 3:
        return drive, EV_DRIVE
    return -drive, EV_DRIVE


@njit_kernel(inline="always")
def leaves(pmode, tmode, ev_il, ev_oi, ev_drive, clamp_hi, clamp_lo):
    """True when the state left its plant or teacher mode's domain (the event functions' values given)."""
    return (pmode == 1 and ev_il <= 0.0) or teacher_exit(tmode, ev_oi, ev_drive, clamp_hi, clamp_lo) >= 0


@njit_kernel(inline="always")
def inside_margin(pmode, tmode, ev_il, ev_oi, ev_drive, clamp_hi, clamp_lo):
    """How far inside its plant and teacher modes the state is (> 0 inside; continuous in the state): the margin
    the crossing's root finder works on."""
    margin, _ = _teacher_margin(tmode, ev_oi, ev_drive, clamp_hi, clamp_lo)
    return min(ev_il, margin) if pmode == 1 else margin


@njit_kernel(inline="always")
def can_stay(pmode, tmode, ev_il, ev_oi, ev_drive, reach_il, reach_oi, reach_drive, clamp_hi, clamp_lo):
    """True when no event function can reach its threshold: each is further from it than it can move (``reach``).

    The kernel bounds how far event q moves within a span S from the modal state z0 (modes with Re(lam) <= 0):
    z(s) - z0 = (e^(lam s) - 1) (z0 + b0 / lam) + phi2(s) b1, |e^(lam s) - 1| <= min(|lam| s, 2), |phi2(s)| <= s^2/2,
    so sum_i |ev_z[q, i]| (|lam_i z0_i + b0_i| min(S, 2 / |lam_i|) + |b1_i| S^2 / 2) + |ev_u[q] . u1| S (tight for a
    fast mode at its equilibrium, where lam z0 + b0 is near 0; |w| taken as |Re w| + |Im w| >= |w|)."""
    if pmode == 1 and ev_il <= reach_il:
        return False
    margin, q = _teacher_margin(tmode, ev_oi, ev_drive, clamp_hi, clamp_lo)
    return margin > (reach_oi if q == EV_OI else reach_drive)
