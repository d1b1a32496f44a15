"""The event-driven kernel: one loop over a whole episode (numba), and a batch of episodes in one call.

Between events the state moves exactly (``propagate``); the events of a period are the clock edges where the holds
sample, the switch's turn-off and turn-on (from the PWL saw) and the rows. The intervals between the period's
fixed events are the same every period, so their propagation factors are computed once per episode and mode.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .jit import kernel as njit_kernel
from .model import EV_DRIVE, EV_IL, EV_OI, HELD_FB, IL, ILO, ILOAD, N_INPUTS, N_STATES, NOISE, OI, REF, VIN
from .network import mlp_into
from .propagate import N_T, can_stay, inside_margin, leaves, modal_factors, mode_at, pwl_at, teacher_exit

# Duty-command sources: the teacher (teacher, gym1), the NN as it is (gym2), the NN limited to 0..1 (deploy).
CMD_TEACHER, CMD_NN, CMD_NN_LIMITED = 0, 1, 2
# Row columns: time, Vout, duty, NNin1..19, nnpwm, NNout1, tduty (the teacher's command as the PWM hold took it).
ROW_COLS = 2 + 1 + 19 + 2 + 1
# Event kinds of a period: ctrlclk's masters sample (0), pwmclk's master samples the duty command (1), its slave
# copies it and the switch schedule changes (2), the row (3), the noise's next value (4), waveform point j (5 + j).
EV_SAMPLE, EV_PWM_MASTER, EV_PWM_SLAVE, EV_ROW, EV_NOISE, EV_WAVE = range(6)


@njit_kernel
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


@njit_kernel
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


@njit_kernel
def _plant_mode(on, il):
    if on:
        return 0
    return 1 if il > 0.0 else 2


@njit_kernel
def period_events(timing, sub, noisy):
    """The period's event offsets (s after the period's start) and kinds, in time order."""
    per, t_ctrl, edge, m_vt, s_vt, pwm_delay = timing[0], timing[1], timing[2], timing[3], timing[4], timing[5]
    # ctrlclk's masters sample at m_vt on the rising edge, slaves copy at s_vt; nothing reads the holds in between,
    # so both happen at the sampling instant. pwmclk: the same, but the duty's change is kept at the slave's instant,
    # where the comparator sees it. The noise takes its next value T/2 after the sampling instant.
    n_ev = 4 + (1 if noisy else 0) + sub
    offs = np.empty(n_ev)
    kinds = np.empty(n_ev, np.int64)
    offs[0], offs[1], offs[2], offs[3] = t_ctrl + m_vt * edge, t_ctrl + pwm_delay + m_vt * edge, \
        t_ctrl + pwm_delay + s_vt * edge, per
    kinds[0], kinds[1], kinds[2], kinds[3] = EV_SAMPLE, EV_PWM_MASTER, EV_PWM_SLAVE, EV_ROW
    i = 4
    if noisy:
        offs[i], kinds[i] = min(t_ctrl + per / 2, per * (1 - 1e-9)), EV_NOISE
        i += 1
    for j in range(sub):
        offs[i + j], kinds[i + j] = j * per / sub, EV_WAVE + j
    order = np.argsort(offs, kind="mergesort")
    return offs[order], kinds[order]


@njit_kernel
def episode(lam, V, Vi, ViB, ev_z, ev_u, ev_abs, cap, bounded, sig_t, sig_v, sig_n, current_load, corners, timing,
            vmax, Rc, steps, cmd, weights, biases, shapes, acts, act_p, check, clamp_hi, clamp_lo, x0, pmode0, tmode0,
            rows, inj_amp, sub, wave, ext, adc_levels, delay, noise, teacher_adc, teacher_runs):
    """One episode: rows[k] = the state at the k-th sampling instant (k+1) T, k = 0..steps.

    With the injection oscillator in the state (9 states), what the controller reads is V(out) + inj_amp * x[8].
    ``sub`` > 0: wave[k * sub + j] = (t, V(out), sensed V(out)) at t = k T + j T / sub (the exact solution on the
    grid SPICE's results are read on), for the loop-gain analysis; and ext[k] = (min, max) of V(out) over the
    period ((k-1) T, k T]: taken at every switching instant, event and grid point, which holds the extremes
    (between two switching instants V(out) is monotonic: the ESR's ramp of the inductor current dominates).

    sig_t/sig_v/sig_n: the piecewise-linear inputs (rows REF, ILOAD, VIN; see ``propagate._inputs``).
    timing: per, t_ctrl, edge, master_vt, slave_vt, pwm_delay, saw td, tr, pw, tf, switch threshold
    (the duty minus this is where the comparator turns the switch).
    Deployment: ``adc_levels`` > 0 quantises the NN's sensed Vout and vin (/ vmax) to that many steps (an ADC of
    log2(levels + 1) bits; the error is the quantised Vout less the reference); with ``teacher_adc`` the teacher's
    feedback is the same quantised sample, held from one ctrlclk edge to the next (its model reads input HELD_FB);
    ``delay`` > 0 applies the NN's output that many control periods later (as the SPICE circuit's chain of holds on
    ctrlclk); ``noise[k]`` is added to the sensed Vout (the NN's samples and the teacher's feedback) from T/2 before
    the k-th sampling instant to T/2 after it (the SPICE circuit's staircase in series with the sense).
    ``teacher_runs``: the teacher is in the circuit (teacher, gym 1, gym 2); else (deploy) its states are left
    unwatched (no clamp events: nothing reads them) and its column is NaN.
    """
    per = timing[0]
    td, tr, pw, tf, thr = timing[6], timing[7], timing[8], timing[9], timing[10]
    x = x0.copy()
    pmode, tmode = pmode0, tmode0
    n_modes, n = lam.shape[0], lam.shape[1]
    injecting = n > N_STATES
    noisy = False
    for v in noise:
        if v != 0.0:
            noisy = True
    offs, kinds = period_events(timing, sub, noisy)
    n_ev = len(offs)
    # e^(lam h), phi1, phi2 per mode: h one check step (z(s+h) without an exp), and each fixed interval of the period
    step = np.empty((3, n_modes, n), np.complex128)
    fix = np.empty((3, n_ev, n_modes, n), np.complex128)
    for m in range(n_modes):
        modal_factors(lam[m], check, step[0, m], step[1, m], step[2, m])
        for o in range(n_ev):
            tau = offs[o] - (offs[o - 1] - per if o == 0 else offs[o - 1])
            modal_factors(lam[m], tau, fix[0, o, m], fix[1, o, m], fix[2, o, m])
    z0, z, b0, b1 = np.empty(n, np.complex128), np.empty(n, np.complex128), np.empty(n, np.complex128), \
        np.empty(n, np.complex128)  # the modal state at an interval's start and now, the modal input and its slope
    u0, u1, ev, reach = np.empty(N_INPUTS), np.empty(N_INPUTS), np.empty(3), np.empty(3)
    held = np.zeros(19)
    sampled = np.zeros(19)
    duty = 0.0
    dcmd = 0.0
    tcmd = 0.0  # the teacher's command at pwmclk's master and (tduty) at its slave: what it applies or would apply
    tduty = 0.0
    held_fb = 0.0  # the teacher's held ADC sample: 0 V until the first edge, as the holds
    mlp_buf = np.empty((2, max(shapes[:, 0].max(), 19)))
    nn_out = mlp_into(held, weights, biases, shapes, acts, act_p, mlp_buf) if cmd != CMD_TEACHER else np.nan
    noise_now = noise[0]
    fifo = np.zeros(max(delay, 1))  # the delay holds, all at 0 V at t = 0
    tog_t = np.empty(8)
    tog_s = np.empty(8)
    nt, ti = 0, 0
    t = 0.0
    for k in range(steps + 1):
        base = k * per
        if sub > 0:
            ext[k, 0], ext[k, 1] = np.inf, -np.inf
        for o in range(n_ev):
            e = kinds[o]
            te = base + offs[o]
            whole = k > 0 or o > 0  # from the previous fixed event, unless a switching instant comes between
            toggling = True
            while toggling:  # to each switching instant before te, then to te
                toggling = ti < nt and tog_t[ti] <= te
                t1 = tog_t[ti] if toggling else te
                o_fix = o if whole and not toggling else -1
                # Advance x from t to t1. Written out here, helpers taking scalars only: numba reference-counts
                # every array a call takes (atomically), which took about half the kernel's time.
                t0 = t
                while t < t1:
                    t_end = t1
                    for ic in range(len(corners)):
                        if t < corners[ic] < t_end:
                            t_end = corners[ic]
                    m = pmode * N_T + tmode
                    tw = tmode if teacher_runs else -1  # the teacher's mode, where its clamps matter
                    span = t_end - t
                    # the inputs u = [1, ref, iload, vin, noise, held_fb] and their slopes (linear up to t_end)
                    u0[0], u1[0] = 1.0, 0.0
                    for q in range(1, NOISE):
                        u0[q], u1[q] = 0.0, 0.0
                        nq = sig_n[q]
                        if nq > 0:
                            u0[q] = sig_v[q, nq - 1]
                            if t < sig_t[q, 0]:
                                u0[q] = sig_v[q, 0]
                            else:
                                for p in range(nq - 1):
                                    if t < sig_t[q, p + 1]:
                                        u1[q] = (sig_v[q, p + 1] - sig_v[q, p]) / (sig_t[q, p + 1] - sig_t[q, p])
                                        u0[q] = sig_v[q, p] + u1[q] * (t - sig_t[q, p])
                                        break
                    u0[NOISE], u1[NOISE] = noise_now, 0.0  # the sensor's noise: constant between noise events
                    u0[HELD_FB], u1[HELD_FB] = held_fb, 0.0  # the teacher's ADC sample (when it reads one)
                    for i in range(n):  # modal form: z0 = Vi x, b = Vi B u
                        acc = 0j
                        for j in range(n):
                            acc += Vi[m, i, j] * x[j]
                        z0[i] = acc
                        z[i] = acc
                        c0 = 0j
                        c1 = 0j
                        for j in range(N_INPUTS):
                            c0 += ViB[m, i, j] * u0[j]
                            c1 += ViB[m, i, j] * u1[j]
                        b0[i] = c0
                        b1[i] = c1
                    # One loop of trial points s in (0, span]: z(s), then the event functions there. Phases:
                    # 0 the bound showed no boundary is reached (one step to span), 1 check steps, 2 locating the
                    # crossing.
                    phase = 1
                    if bounded[m]:
                        for q in range(3):
                            v = 0.0
                            for i in range(n):
                                v += (ev_z[m, q, i] * z0[i]).real
                            for j in range(N_INPUTS):
                                v += ev_u[m, q, j] * u0[j]
                            ev[q] = v
                            # how far event q can move within span (the bound of propagate.can_stay; computed for
                            # all three, also those the mode does not watch: skipping them measured 25 % slower)
                            bound = 0.0
                            for i in range(n):
                                d = lam[m, i] * z0[i] + b0[i]
                                bound += ev_abs[m, q, i] * ((abs(d.real) + abs(d.imag)) * min(span, cap[m, i]) + (
                                    abs(b1[i].real) + abs(b1[i].imag)) * span * span / 2.0)
                            du = 0.0
                            for j in range(N_INPUTS):
                                du += ev_u[m, q, j] * u1[j]
                            reach[q] = bound + abs(du) * span
                        if can_stay(pmode, tw, ev[EV_IL], ev[EV_OI], ev[EV_DRIVE], reach[EV_IL], reach[EV_OI],
                                    reach[EV_DRIVE], clamp_hi, clamp_lo):
                            phase = 0
                    s_lo, lo, hi = 0.0, 0.0, 0.0
                    g_last, g_lo, g_hi, side = np.nan, np.nan, np.nan, 0  # how far inside the mode (> 0 inside)
                    if bounded[m]:
                        g_last = inside_margin(pmode, tw, ev[EV_IL], ev[EV_OI], ev[EV_DRIVE], clamp_hi, clamp_lo)
                    hit = False
                    halvings = 0
                    while True:
                        if phase == 0:
                            s = span
                        elif phase == 1:
                            s = min(s_lo + check, span)
                        else:  # locate the crossing in (lo, hi): regula falsi (Illinois) on the margin, else halving
                            halvings += 1
                            if hi - lo <= 1e-14 or halvings > 60:
                                s = hi  # the crossing, within 1e-14 s: take the state just outside the mode
                            else:
                                s = 0.5 * (lo + hi)
                                if g_lo > 0.0 and g_hi < 0.0 and halvings % 4 != 0:  # every 4th: a plain halving
                                    sf = hi - g_hi * (hi - lo) / (g_hi - g_lo)
                                    if lo < sf < hi:
                                        s = sf
                        if phase == 1 and s < span:  # a whole check step from z(s_lo), no exp needed
                            for i in range(n):
                                z[i] = step[0, m, i] * z[i] + (b0[i] + b1[i] * s_lo) * step[1, m, i] \
                                    + b1[i] * step[2, m, i]
                        elif phase == 0 and o_fix >= 0 and t == t0 and t_end == t1:  # a whole fixed interval
                            for i in range(n):
                                z[i] = fix[0, o_fix, m, i] * z0[i] + b0[i] * fix[1, o_fix, m, i] \
                                    + b1[i] * fix[2, o_fix, m, i]
                        else:
                            for i in range(n):
                                z[i] = mode_at(lam[m, i], z0[i], b0[i], b1[i], s)
                        if phase == 0:
                            break
                        for q in range(3):
                            v = 0.0
                            for i in range(n):
                                v += (ev_z[m, q, i] * z[i]).real
                            for j in range(N_INPUTS):
                                v += ev_u[m, q, j] * (u0[j] + u1[j] * s)
                            ev[q] = v
                        out = leaves(pmode, tw, ev[EV_IL], ev[EV_OI], ev[EV_DRIVE], clamp_hi, clamp_lo)
                        g = inside_margin(pmode, tw, ev[EV_IL], ev[EV_OI], ev[EV_DRIVE], clamp_hi, clamp_lo)
                        if phase == 2:
                            if s == hi and (hi - lo <= 1e-14 or halvings > 60):
                                hit = True
                                break
                            if out:
                                hi, g_hi = s, g
                                if side > 0:
                                    g_lo *= 0.5  # Illinois: the end kept twice counts half, so both ends move
                                side = 1
                            else:
                                lo, g_lo = s, g
                                if side < 0:
                                    g_hi *= 0.5
                                side = -1
                        elif out:  # inside the mode at s_lo, outside at s
                            phase, lo, hi, g_lo, g_hi = 2, s_lo, s, g_last, g
                        elif s >= span:
                            break
                        else:
                            s_lo, g_last = s, g
                    s_lo = hi if hit else span
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
                        nt_mode = teacher_exit(tw, ev[EV_OI], ev[EV_DRIVE], clamp_hi, clamp_lo)
                        if nt_mode >= 0:
                            tmode = nt_mode
                            if tmode == 3:
                                x[OI] = clamp_hi
                            elif tmode == 4:
                                x[OI] = clamp_lo
                    if current_load:
                        x[ILO] = 0.0
                if toggling:  # the switch changes: [saw < duty - threshold]
                    whole = False
                    if sub > 0:
                        iload, _ = pwl_at(sig_t, sig_v, ILOAD, sig_n[ILOAD], t)
                        vout = x[1] + Rc * (x[IL] - x[ILO] - iload)
                        ext[k, 0] = min(ext[k, 0], vout)
                        ext[k, 1] = max(ext[k, 1], vout)
                    pmode = _plant_mode(tog_s[ti] > 0.5, x[IL])
                    if pmode == 2:
                        x[IL] = 0.0
                    ti += 1
            ref, _ = pwl_at(sig_t, sig_v, REF, sig_n[REF], t)
            iload, _ = pwl_at(sig_t, sig_v, ILOAD, sig_n[ILOAD], t)
            vout = x[1] + Rc * (x[IL] - x[ILO] - iload)
            sensed = (vout + inj_amp * x[N_STATES + 1] if injecting else vout) + noise_now
            if sub > 0:
                ext[k, 0] = min(ext[k, 0], vout)
                ext[k, 1] = max(ext[k, 1], vout)
            if e == EV_NOISE:  # the noise steps to the next period's value, half a period before its sampling instant
                if k + 1 < noise.shape[0]:
                    noise_now = noise[k + 1]
            elif e >= EV_WAVE:  # a waveform point
                i = k * sub + (e - EV_WAVE)
                if i < wave.shape[0]:
                    wave[i, 0] = t
                    wave[i, 1] = vout
                    wave[i, 2] = sensed
            elif e == EV_SAMPLE:  # ctrlclk masters open: sample
                vin, _ = pwl_at(sig_t, sig_v, VIN, sig_n[VIN], t)
                vo = sensed / vmax
                vi = vin / vmax
                if adc_levels > 0.0:
                    vo = np.floor(vo * adc_levels + 0.5) / adc_levels
                    vi = np.floor(vi * adc_levels + 0.5) / adc_levels
                if teacher_adc:
                    held_fb = vo
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
                    nn_out = mlp_into(held, weights, biases, shapes, acts, act_p, mlp_buf)
            elif e == EV_PWM_MASTER:  # pwmclk master samples the duty command
                if teacher_runs:
                    tcmd = min(max(x[OI], 0.0), 1.0)
                if cmd == CMD_TEACHER:
                    dcmd = min(max(x[OI], 0.0), 1.0)
                else:
                    applied = fifo[delay - 1] if delay > 0 else nn_out
                    dcmd = applied if cmd == CMD_NN else min(max(applied, 0.0), 1.0)
            elif e == EV_PWM_SLAVE:  # the duty changes; the switch follows [saw < duty - threshold] until the next
                duty = dcmd
                tduty = tcmd
                on, nt = switch_toggles(duty - thr, t, t + per, td, tr, pw, tf, per, tog_t, tog_s)
                ti = 0
                pmode = _plant_mode(on, x[IL])
                if pmode == 2:
                    x[IL] = 0.0
            elif e == EV_ROW:
                rows[k, 0] = t
                rows[k, 1] = vout
                rows[k, 2] = duty
                for j in range(19):
                    rows[k, 3 + j] = held[j]
                rows[k, 22] = min(max(x[OI], 0.0), 1.0) if teacher_runs else np.nan
                rows[k, 23] = nn_out
                rows[k, 24] = tduty if teacher_runs else np.nan


@njit_kernel(parallel=True)
def run_batch(lam, V, Vi, ViB, ev_z, ev_u, ev_abs, cap, bounded, sig_t, sig_v, sig_n, current_load, corners, timing,
              vmax, Rc, steps, cmd, weights, biases, shapes, acts, act_p, check, clamp_hi, clamp_lo, x0, pmode0,
              tmode0, rows, inj_amp, sub, wave, ext, adc_levels, delay, noise, teacher_adc, teacher_runs):
    """Episodes b = 0..B-1 of one network in one call (threads over the batch): every argument of ``episode``
    that differs per episode has the batch as its first axis (rows, wave, ext, noise padded to the longest)."""
    for b in prange(lam.shape[0]):
        episode(lam[b], V[b], Vi[b], ViB[b], ev_z[b], ev_u[b], ev_abs[b], cap[b], bounded[b], sig_t[b], sig_v[b],
                sig_n[b], current_load[b], corners[b], timing[b], vmax[b], Rc[b], steps[b], cmd, weights, biases,
                shapes, acts, act_p, check[b], clamp_hi[b], clamp_lo[b], x0[b], pmode0[b], tmode0[b], rows[b],
                inj_amp[b], sub, wave[b], ext[b], adc_levels[b], delay[b], noise[b], teacher_adc[b],
                teacher_runs)
