"""The event-driven kernel: exact modal propagation between events, one loop over a whole episode (numba)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..nn.activations import ACTIVATIONS
from .model import EV_DRIVE, EV_IL, EV_OI, IL, ILO, N_INPUTS, NOISE, N_STATES, OI, REF, ILOAD, TEACHER_MODES, VIN

N_T = len(TEACHER_MODES)
# Teacher modes: 0 linear, 1 output at 1, 2 output at 0, 3 oi diode-clamped high, 4 low.
# Duty-command sources: the teacher (teacher, gym1), the NN as it is (gym2), the NN limited to 0..1 (deploy).
CMD_TEACHER, CMD_NN, CMD_NN_LIMITED = 0, 1, 2
# Activations of the compiled MLP: the ids of buckbi.nn.activations (0: none). numba takes them as constants.
ACT_NONE = 0
ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SILU, ACT_HARDTANH, ACT_HARDSIGMOID, ACT_LEAKY, ACT_ELU, ACT_SOFTPLUS = (
    ACTIVATIONS[k].id for k in ("relu", "sigmoid", "tanh", "silu", "hardtanh", "hardsigmoid", "leaky_relu", "elu",
                                "softplus"))
# Row columns: time, Vout, duty, NNin1..19, nnpwm, NNout1.
ROW_COLS = 2 + 1 + 19 + 2


@njit(cache=True, inline="always")
def _pwl(times, values, t):
    """Value and right-hand slope of a piecewise-linear signal (constant outside its points)."""
    n = len(times)
    if n == 0:
        return 0.0, 0.0
    if t < times[0]:
        return values[0], 0.0
    for i in range(n - 1):
        if t < times[i + 1]:
            slope = (values[i + 1] - values[i]) / (times[i + 1] - times[i])
            return values[i] + slope * (t - times[i]), slope
    return values[n - 1], 0.0


@njit(cache=True)
def _modal_step(lam, z0, b0, b1, tau, out):
    """z(tau) for dz/dt = lam z + b0 + b1 s, exact (phi functions, series near lam tau = 0)."""
    for i in range(len(lam)):
        x = lam[i] * tau
        e = np.exp(x)
        if abs(x) < 1e-4:
            phi1 = tau * (1.0 + x / 2.0 + x * x / 6.0)
            phi2 = tau * tau * (0.5 + x / 6.0 + x * x / 24.0)
        else:
            phi1 = (e - 1.0) / lam[i]
            phi2 = (e - 1.0 - x) / (lam[i] * lam[i])
        out[i] = e * z0[i] + b0[i] * phi1 + b1[i] * phi2


@njit(cache=True)
def _event_value(ev_z, ev_u, k, z, u0, u1, s):
    v = 0.0
    for i in range(len(z)):
        v += (ev_z[k, i] * z[i]).real
    for j in range(len(u0)):
        v += ev_u[k, j] * (u0[j] + u1[j] * s)
    return v


@njit(cache=True)
def _teacher_exit(tmode, oi, drive, clamp_hi, clamp_lo):
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


@njit(cache=True)
def _inputs(t, sig_t, sig_v, sig_n, u0, u1):
    """u = [1, ref, iload, vin] and its slopes at t; signal k is sig_t/sig_v[k, :sig_n[k]] (k = REF, ILOAD, VIN)."""
    u0[0], u1[0] = 1.0, 0.0
    for k in range(1, N_INPUTS):
        n = sig_n[k]
        u0[k], u1[k] = _pwl(sig_t[k, :n], sig_v[k, :n], t)


@njit(cache=True)
def _eval_events(ev_z, ev_u, m, z, u0, u1, s, out):
    for k in range(3):
        out[k] = _event_value(ev_z[m], ev_u[m], k, z, u0, u1, s)


@njit(cache=True)
def _exit(pmode, tmode, ev, clamp_hi, clamp_lo):
    """True when the state left its plant or teacher mode's domain."""
    return (pmode == 1 and ev[EV_IL] <= 0.0) or _teacher_exit(tmode, ev[EV_OI], ev[EV_DRIVE], clamp_hi, clamp_lo) >= 0


@njit(cache=True)
def advance(x, t0, t1, pmode, tmode, lam, V, Vi, ViB, ev_z, ev_u, step_e, step_p1, step_p2, check, sig_t, sig_v,
            sig_n, current_load, corners, clamp_hi, clamp_lo, work, rwork, noise):
    """Move state ``x`` from t0 to t1 in place; returns the (plant, teacher) modes at t1.

    Splits at input corners; watches iL (diode -> dcm) and the teacher's clamp conditions every ``check``
    seconds (stepping the modal solution with precomputed factors) and locates a crossing by bisection on
    the exact solution.
    """
    n = lam.shape[1]  # 7 states, 9 with the loop-gain injection's oscillator
    z0, z, b0, b1 = work[0], work[1], work[2], work[3]
    u0, u1, ev = rwork[0, :N_INPUTS], rwork[1, :N_INPUTS], rwork[2, :3]
    t = t0
    while t < t1:
        t_end = t1
        for c in corners:
            if t < c < t_end:
                t_end = c
        m = pmode * N_T + tmode
        _inputs(t, sig_t, sig_v, sig_n, u0, u1)
        u0[NOISE], u1[NOISE] = noise, 0.0  # the sensor's noise: constant between the kernel's noise events
        for i in range(n):
            acc = 0j
            for j in range(n):
                acc += Vi[m, i, j] * x[j]
            z0[i] = acc
            z[i] = acc
            b0[i] = 0j
            b1[i] = 0j
            for j in range(N_INPUTS):
                b0[i] += ViB[m, i, j] * u0[j]
                b1[i] += ViB[m, i, j] * u1[j]
        span = t_end - t
        s_lo = 0.0
        hit = False
        while s_lo < span:
            if s_lo + check < span:  # a whole check step from z(s_lo), no exp needed
                s_hi = s_lo + check
                for i in range(n):
                    z[i] = step_e[m, i] * z[i] + (b0[i] + b1[i] * s_lo) * step_p1[m, i] + b1[i] * step_p2[m, i]
            else:
                s_hi = span
                _modal_step(lam[m], z0, b0, b1, s_hi, z)
            _eval_events(ev_z, ev_u, m, z, u0, u1, s_hi, ev)
            if _exit(pmode, tmode, ev, clamp_hi, clamp_lo):
                a, b = s_lo, s_hi  # inside the mode at a, outside at b
                for _ in range(60):
                    if b - a <= 1e-14:
                        break
                    mid = 0.5 * (a + b)
                    _modal_step(lam[m], z0, b0, b1, mid, z)
                    _eval_events(ev_z, ev_u, m, z, u0, u1, mid, ev)
                    if _exit(pmode, tmode, ev, clamp_hi, clamp_lo):
                        b = mid
                    else:
                        a = mid
                _modal_step(lam[m], z0, b0, b1, b, z)
                _eval_events(ev_z, ev_u, m, z, u0, u1, b, ev)
                s_lo = b
                hit = True
                break
            s_lo = s_hi
        for i in range(n):
            acc = 0.0
            for j in range(n):
                acc += (V[m, i, j] * z[j]).real
            x[i] = acc
        t = t + s_lo if hit else t_end
        if hit:
            if pmode == 1 and ev[EV_IL] <= 0.0:
                pmode = 2
                x[IL] = 0.0
            nt = _teacher_exit(tmode, ev[EV_OI], ev[EV_DRIVE], clamp_hi, clamp_lo)
            if nt >= 0:
                tmode = nt
                if tmode == 3:
                    x[OI] = clamp_hi
                elif tmode == 4:
                    x[OI] = clamp_lo
        if current_load:
            x[ILO] = 0.0
    return pmode, tmode


@njit(cache=True)
def _saw(t, td, tr, pw, tf, per):
    if t < td:
        return 0.0
    s = (t - td) % per
    if s < tr:
        return s / tr
    if s < tr + pw:
        return 1.0
    if s < tr + pw + tf:
        return 1.0 - (s - tr - pw) / tf
    return 0.0


@njit(cache=True)
def switch_toggles(dthr, ta, tb, td, tr, pw, tf, per, out_t, out_s):
    """The switch command [saw < dthr] at ta, and the times in (ta, tb) where it changes (the saw is PWL)."""
    on = _saw(ta, td, tr, pw, tf, per) < dthr
    n = 0
    if dthr <= 0.0 or dthr > 1.0:
        return on, 0  # never on, or on throughout
    k = max(0, int(np.floor((ta - td) / per)))
    while td + k * per < tb:
        base = td + k * per
        t_off = base + dthr * tr  # the rising ramp reaches the threshold
        t_on = base + tr + pw + (1.0 - dthr) * tf  # the reset falls below it
        if ta < t_off < tb:
            out_t[n], out_s[n] = t_off, 0.0
            n += 1
        if ta < t_on < tb:
            out_t[n], out_s[n] = t_on, 1.0
            n += 1
        k += 1
    return on, n


@njit(cache=True)
def _activate(v, act, p0, p1):
    if act == ACT_RELU:
        return v if v > 0.0 else 0.0
    if act == ACT_SIGMOID:
        return 1.0 / (1.0 + np.exp(-v)) if v >= 0.0 else np.exp(v) / (1.0 + np.exp(v))
    if act == ACT_TANH:
        return np.tanh(v)
    if act == ACT_LEAKY:
        return v if v > 0.0 else p0 * v
    if act == ACT_HARDTANH:
        return min(max(v, p0), p1)
    if act == ACT_HARDSIGMOID:
        return min(max(v / 6.0 + 0.5, 0.0), 1.0)
    if act == ACT_SILU:
        return v / (1.0 + np.exp(-v)) if v >= 0.0 else v * np.exp(v) / (1.0 + np.exp(v))
    if act == ACT_ELU:
        return v if v > 0.0 else p0 * (np.exp(v) - 1.0)
    if act == ACT_SOFTPLUS:  # p0 beta, p1 threshold
        return v if p0 * v > p1 else np.log1p(np.exp(p0 * v)) / p0
    return v


@njit(cache=True)
def mlp(x, weights, biases, shapes, acts, act_p):
    """The compiled actor: layers of (W, b) then an activation each (ACT_NONE for none)."""
    h = x.copy()
    w_off = 0
    b_off = 0
    for layer in range(shapes.shape[0]):
        n_out, n_in = shapes[layer, 0], shapes[layer, 1]
        y = np.empty(n_out)
        for i in range(n_out):
            acc = biases[b_off + i]
            for j in range(n_in):
                acc += weights[w_off + i * n_in + j] * h[j]
            y[i] = _activate(acc, acts[layer], act_p[layer, 0], act_p[layer, 1])
        w_off += n_out * n_in
        b_off += n_out
        h = y
    return h[0]


@njit(cache=True)
def _plant_mode(on, il):
    if on:
        return 0
    return 1 if il > 0.0 else 2


@njit(cache=True)
def run_kernel(lam, V, Vi, ViB, ev_z, ev_u, sig_t, sig_v, sig_n, current_load, corners, timing, vmax, Rc, steps,
               cmd, weights, biases, shapes, acts, act_p, check, clamp_hi, clamp_lo, x0, pmode0, tmode0, rows,
               inj_amp, sub, wave, ext, adc_levels, delay, noise):
    """One episode: rows[k] = the state at the k-th sampling instant (k+1) T, k = 0..steps.

    With the injection oscillator in the state (9 states), what the controller reads is V(out) + inj_amp * x[8].
    ``sub`` > 0: wave[k * sub + j] = (t, V(out), sensed V(out)) at t = k T + j T / sub (the exact solution on the
    grid SPICE's results are read on), for the loop-gain analysis; and ext[k] = (min, max) of V(out) over the
    period ((k-1) T, k T]: taken at every switching instant, event and grid point, which holds the extremes
    (between two switching instants V(out) is monotonic: the ESR's ramp of the inductor current dominates).

    sig_t/sig_v/sig_n: the piecewise-linear inputs (rows REF, ILOAD, VIN; see ``_inputs``).
    timing: per, t_ctrl, edge, master_vt, slave_vt, pwm_delay, saw td, tr, pw, tf, switch threshold
    (the duty minus this is where the comparator turns the switch).
    Deployment: ``adc_levels`` > 0 quantises the NN's sensed Vout and vin (/ vmax) to that many steps (an ADC of
    log2(levels + 1) bits; the error is the quantised Vout less the reference); ``delay`` > 0 applies the NN's
    output that many control periods later (as the SPICE circuit's chain of holds on ctrlclk); ``noise[k]`` is
    added to the sensed Vout (the NN's samples and the teacher's feedback) from T/2 before the k-th sampling instant
    to T/2 after it (the SPICE circuit's staircase in series with the sense).
    """
    per, t_ctrl, edge, m_vt, s_vt, pwm_delay = timing[0], timing[1], timing[2], timing[3], timing[4], timing[5]
    td, tr, pw, tf, thr = timing[6], timing[7], timing[8], timing[9], timing[10]
    x = x0.copy()
    pmode, tmode = pmode0, tmode0
    n_modes, n = lam.shape[0], lam.shape[1]
    injecting = n > N_STATES
    step_e = np.empty((n_modes, n), np.complex128)
    step_p1 = np.empty((n_modes, n), np.complex128)
    step_p2 = np.empty((n_modes, n), np.complex128)
    zero = np.zeros(n, np.complex128)
    one = np.ones(n, np.complex128)
    for m in range(n_modes):  # e^(lam h), phi1, phi2 of one check step: z(s+h) without an exp
        _modal_step(lam[m], one, zero, zero, check, step_e[m])
        _modal_step(lam[m], zero, one, zero, check, step_p1[m])
        _modal_step(lam[m], zero, zero, one, check, step_p2[m])
    work = np.empty((4, n), np.complex128)
    rwork = np.empty((3, max(N_INPUTS, 3)))
    held = np.zeros(19)
    sampled = np.zeros(19)
    duty = 0.0
    dcmd = 0.0
    nn_out = mlp(held, weights, biases, shapes, acts, act_p) if cmd != CMD_TEACHER else np.nan
    noise_now = noise[0]
    fifo = np.zeros(max(delay, 1))  # the delay holds, all at 0 V at t = 0
    tog_t = np.empty(8)
    tog_s = np.empty(8)
    nt, ti = 0, 0
    t = 0.0
    # Events of a period, in time order (the same every period): ctrlclk's masters sample at m_vt on the rising
    # edge, slaves copy at s_vt; nothing reads the holds in between, so both happen at the sampling instant.
    # pwmclk: the same, but the duty's change is kept at the slave's instant, where the comparator sees it.
    # Kinds 0..3: those and the row at the period's end; 4: the noise takes the next period's value (T/2 after
    # the sampling instant); 5 + j: the j-th waveform point.
    n_ev = 5 + sub
    offs = np.empty(n_ev)
    offs[0] = t_ctrl + m_vt * edge
    offs[1] = t_ctrl + pwm_delay + m_vt * edge
    offs[2] = t_ctrl + pwm_delay + s_vt * edge
    offs[3] = per
    offs[4] = min(t_ctrl + per / 2, per * (1 - 1e-9))
    for j in range(sub):
        offs[5 + j] = j * per / sub
    order = np.argsort(offs, kind="mergesort")
    for k in range(steps + 1):
        base = k * per
        if sub > 0:
            ext[k, 0], ext[k, 1] = np.inf, -np.inf
        for o in range(n_ev):
            e = order[o]
            te = base + offs[e]
            while ti < nt and tog_t[ti] <= te:
                pmode, tmode = advance(x, t, tog_t[ti], pmode, tmode, lam, V, Vi, ViB, ev_z, ev_u, step_e, step_p1,
                                       step_p2, check, sig_t, sig_v, sig_n, current_load, corners, clamp_hi, clamp_lo,
                                       work, rwork, noise_now)
                t = tog_t[ti]
                if sub > 0:
                    iload, _ = _pwl(sig_t[ILOAD, :sig_n[ILOAD]], sig_v[ILOAD, :sig_n[ILOAD]], t)
                    vout = x[1] + Rc * (x[IL] - x[ILO] - iload)
                    ext[k, 0] = min(ext[k, 0], vout)
                    ext[k, 1] = max(ext[k, 1], vout)
                pmode = _plant_mode(tog_s[ti] > 0.5, x[IL])
                if pmode == 2:
                    x[IL] = 0.0
                ti += 1
            pmode, tmode = advance(x, t, te, pmode, tmode, lam, V, Vi, ViB, ev_z, ev_u, step_e, step_p1, step_p2,
                                   check, sig_t, sig_v, sig_n, current_load, corners, clamp_hi, clamp_lo, work, rwork,
                                   noise_now)
            t = te
            ref, _ = _pwl(sig_t[REF, :sig_n[REF]], sig_v[REF, :sig_n[REF]], t)
            iload, _ = _pwl(sig_t[ILOAD, :sig_n[ILOAD]], sig_v[ILOAD, :sig_n[ILOAD]], t)
            vin, _ = _pwl(sig_t[VIN, :sig_n[VIN]], sig_v[VIN, :sig_n[VIN]], t)
            vout = x[1] + Rc * (x[IL] - x[ILO] - iload)
            sensed = (vout + inj_amp * x[N_STATES + 1] if injecting else vout) + noise_now
            if sub > 0:
                ext[k, 0] = min(ext[k, 0], vout)
                ext[k, 1] = max(ext[k, 1], vout)
            if e == 4:  # the noise steps to the next period's value, half a period before its sampling instant
                if k + 1 < noise.shape[0]:
                    noise_now = noise[k + 1]
            elif e >= 5:  # a waveform point
                i = k * sub + (e - 5)
                if i < wave.shape[0]:
                    wave[i, 0] = t
                    wave[i, 1] = vout
                    wave[i, 2] = sensed
            elif e == 0:  # ctrlclk masters open: sample
                vo = sensed / vmax
                vi = vin / vmax
                if adc_levels > 0.0:
                    vo = np.floor(vo * adc_levels + 0.5) / adc_levels
                    vi = np.floor(vi * adc_levels + 0.5) / adc_levels
                sampled[0] = vo
                sampled[5] = (vo * vmax - ref) / vmax
                sampled[10] = duty
                sampled[15] = vi
                sampled[16] = ref / vmax
                sampled[18] = held[18] + sampled[5]
                # slaves copy: the delay lines shift by one
                for first in (0, 5, 10):
                    for j in range(first + 4, first, -1):
                        held[j] = held[j - 1]
                    held[first] = sampled[first]
                held[15] = sampled[15]
                held[16] = sampled[16]
                held[18] = sampled[18]
                held[17] = held[10] - held[11]
                if cmd != CMD_TEACHER:
                    if delay > 0:  # the delay holds shift: the first takes the output of the period ending now
                        for j in range(delay - 1, 0, -1):
                            fifo[j] = fifo[j - 1]
                        fifo[0] = nn_out
                    nn_out = mlp(held, weights, biases, shapes, acts, act_p)
            elif e == 1:  # pwmclk master samples the duty command
                if cmd == CMD_TEACHER:
                    dcmd = min(max(x[OI], 0.0), 1.0)
                else:
                    applied = fifo[delay - 1] if delay > 0 else nn_out
                    dcmd = applied if cmd == CMD_NN else min(max(applied, 0.0), 1.0)
            elif e == 2:  # the duty changes; the switch follows [saw < duty - threshold] until the next change
                duty = dcmd
                on, nt = switch_toggles(duty - thr, t, t + per, td, tr, pw, tf, per, tog_t, tog_s)
                ti = 0
                pmode = _plant_mode(on, x[IL])
                if pmode == 2:
                    x[IL] = 0.0
            elif e == 3:
                rows[k, 0] = t
                rows[k, 1] = vout
                rows[k, 2] = duty
                for j in range(19):
                    rows[k, 3 + j] = held[j]
                rows[k, 22] = min(max(x[OI], 0.0), 1.0)
                rows[k, 23] = nn_out


@njit(cache=True)
def mlp_rows(xs, weights, biases, shapes, acts, act_p):
    """The compiled actor on each row of ``xs``."""
    out = np.empty(xs.shape[0])
    for k in range(xs.shape[0]):
        out[k] = mlp(xs[k], weights, biases, shapes, acts, act_p)
    return out
