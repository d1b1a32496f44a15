"""POP + AC on the fast model (as SIMPLIS does): the periodic operating point of a closed loop found by Newton on its
period map, then the loop gain from the linearised switched system around that orbit.

The loop is the fast simulator's piecewise-linear circuit (``buckbi.pwl.model``: per conduction mode dx/dt = A x +
B u) with its clocked parts: the samples on ctrlclk's rising edge (the NN's held inputs, its delay line, the
accumulator NNin19), the duty command taken at pwmclk's master and applied at its slave, the switch following [saw <
duty - threshold]. One period runs from a sampling instant to the next. The orbit is recorded as segments (a mode
for a time) and events (the clocked updates, the switch's turn-off and turn-on at times the duty sets, the diode
current reaching zero in discontinuous conduction).

AC: for an injection e^(st) in series with the sensed Vout (where ``buckbi fra`` injects), the linearised loop's
steady state is e^(st) p(t) with p periodic; p obeys p' = (A - s I) p + b (b: how the sensed voltage enters the
teacher's continuous compensator) on each segment, and jumps at the events (the clocked maps; the saltation of a
switching instant that the duty moves, and of the state-dependent discontinuous-conduction event). Composing one
period gives p's start; its mean over the period is the fundamental at f, and T(f) = -V(out)/V(vsense) there, as the
injection measures it. At s = 0 the same composition is the period map's Jacobian: Newton's matrix for the orbit and,
by its eigenvalues, the closed loop's poles (the largest |eigenvalue| is the critical pole).

Left out (refused with the reason): the ADC and sensor noise (a quantiser has no small-signal gain; noise is not
periodic), a duty or the teacher at a limit on the orbit (no small-signal path), an orbit of more than one period.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import torch
from torch import nn

from ..converters.buck.spec import EpisodeParams
from ..pwl.model import IL, ILO, N_INPUTS, N_STATES, OI, REF, VC, VIN, ILOAD, ONE, NOISE, mode_equations
from ..pwl.simulate import circuit

CONTROLLERS = ("nn", "teacher")
PLANT = (IL, VC, ILO)  # what the NN's loop keeps of the state (the teacher's states do not feed back in deploy)
DCM_CURRENT = 1e-9  # A: an inductor current this small at the sampling instant is discontinuous conduction


class PopError(ValueError):
    """No periodic operating point, or one the small-signal analysis cannot take; the message says why."""


@dataclass
class Orbit:
    """A periodic operating point: the state at the sampling instant and what one period did."""

    X: np.ndarray  # the loop's state at the sampling instant (the layout of Loop.names)
    duty: float
    segments: list = field(repr=False)  # (kind, ...) as _period records them
    iterations: int = 0
    residual: float = 0.0
    jacobian: np.ndarray | None = field(default=None, repr=False)  # the period map's, at X


@dataclass
class LoopGain:
    """T(f) at the frequencies asked, the margins, and the closed loop's critical pole (period map at the orbit)."""

    f_Hz: np.ndarray
    T: np.ndarray
    critical_pole: float  # largest |eigenvalue| of the linearised period map: < 1 stable
    orbit: Orbit

    @property
    def gain_dB(self) -> np.ndarray:
        return 20 * np.log10(np.abs(self.T))

    @property
    def phase_deg(self) -> np.ndarray:
        return np.degrees(np.unwrap(np.angle(self.T)))


class Loop:
    """One closed loop at one operating point: the matrices, the clock timing and the controller."""

    def __init__(self, controller: str, actor: nn.Module | None, params: EpisodeParams):
        if controller not in CONTROLLERS:
            raise PopError(f"controller must be one of {', '.join(CONTROLLERS)}, got {controller!r}")
        if params.adc_levels or params.noise_mV:
            raise PopError("the periodic operating point is taken without the ADC and sensor noise (a quantiser has "
                           "no small-signal gain, noise is not periodic): measure those by injection (--method "
                           "inject)")
        if controller == "nn" and not isinstance(actor, nn.Module):
            raise PopError("the network's small-signal gain needs its PyTorch model (--actor); a netlist runs in "
                           "SPICE only: use buckbi import, or --method inject")
        c = circuit(params)
        self.c, self.p, self.controller = c, params, controller
        # a float64 copy: the caller's network (a learner's, say) keeps its dtype and mode
        self.actor = copy.deepcopy(actor).double().eval() if actor is not None else None
        self.delay = int(params.delay_periods) if controller == "nn" else 0
        # the plant's three conduction modes with the teacher linear (the orbit is refused where it is not)
        mats = [mode_equations(c, params.ro, params.Lo, params.vmax, False, plant, 0) for plant in range(3)]
        self.A = np.array([m[0] for m in mats])
        self.B = np.array([m[1] for m in mats])
        self.u = np.zeros(N_INPUTS)
        self.u[ONE], self.u[REF], self.u[ILOAD], self.u[VIN] = 1.0, params.vref, 0.0, params.vin
        self.per = c.period
        t_s = c.t_ctrl + c.master_vt * c.edge
        self.t_s = t_s % self.per
        self.t_pm = c.pwm_delay  # pwmclk's master and slave, after the sampling instant
        self.t_ps = c.pwm_delay + (c.slave_vt - c.master_vt) * c.edge
        self.thr = c.switch_vt / c.comparator_gain
        # the loop's state: the circuit's (the NN's loop: the plant's three), then the clocked values
        self.xi = list(range(N_STATES)) if controller == "teacher" else list(PLANT)
        nx = len(self.xi)
        held = 19 if controller == "nn" else 0
        self.i_held = nx
        self.i_out = nx + held if controller == "nn" else -1  # the NN's output computed at the last sample
        self.i_fifo = self.i_out + 1 if controller == "nn" else -1
        self.i_duty = nx + held + (1 + self.delay if controller == "nn" else 0)
        self.i_dcmd = self.i_duty + 1
        self.n = self.i_dcmd + 1
        # V(out) = vC + ESR (iL - iLo - iload) and how the sensed voltage enters the teacher
        self.c_out = np.zeros(self.n)
        for i, w in ((IL, c.Rc), (VC, 1.0), (ILO, -c.Rc)):
            self.c_out[self.xi.index(i)] = w
        self.b_sense = np.zeros((len(self.A), self.n))
        if controller == "teacher":
            self.b_sense[:, :nx] = self.B[:, :, NOISE]

    # --- the nonlinear period map ------------------------------------------------------------------------------

    def mode(self, plant: int) -> int:
        return plant  # the teacher linear; in the NN's loop its states are not kept

    def _flow(self, X: np.ndarray, m: int, h: float) -> np.ndarray:
        """The circuit's states after ``h`` in mode ``m`` (inputs constant: exact, in modal form)."""
        lam, V, Vi, _, _ = _modes(self)[m]
        k = len(self.xi)
        e, p1, _ = _phi(lam, h)
        out = X.copy()
        out[:k] = (V @ (e * (Vi @ X[:k]) + p1 * self._modal_Bu[m])).real
        return out

    def _flow_state(self, X: np.ndarray, m: int, hs: np.ndarray, i: int) -> np.ndarray:
        """State ``i`` after each time of ``hs`` in mode ``m`` (the discontinuous-conduction search's grid at once)."""
        lam, V, Vi, _, _ = _modes(self)[m]
        e, p1, _ = _phi(lam[None, :], hs[:, None])
        return ((e * (Vi @ X[:len(self.xi)]) + p1 * self._modal_Bu[m]) @ V[i]).real

    @property
    def _modal_Bu(self) -> list[np.ndarray]:
        """Per mode, the constant inputs' drive B u in modal coordinates (computed once)."""
        if not hasattr(self, "_mbu"):
            self._mbu = [mode[2] @ (self.B[m][self.xi] @ self.u) for m, mode in _modes(self).items()]
        return self._mbu

    def _deriv(self, X: np.ndarray, m: int) -> np.ndarray:
        return self.A[m][np.ix_(self.xi, self.xi)] @ X[:len(self.xi)] + self.B[m][self.xi] @ self.u

    def _net_value(self, held: np.ndarray) -> np.ndarray:
        """The network's output for rows of inputs (no gradient)."""
        with torch.no_grad():
            return self.actor(torch.as_tensor(np.atleast_2d(held), dtype=torch.float64))[:, 0].numpy()

    def _net(self, held: np.ndarray) -> tuple[float, np.ndarray]:
        """The network's output and its Jacobian at ``held`` (exact: autograd through the model)."""
        x = torch.tensor(held, dtype=torch.float64, requires_grad=True)
        y = self.actor(x[None, :])[0, 0]
        (g,) = torch.autograd.grad(y, x)
        return float(y.detach()), g.numpy().copy()

    def vout(self, X: np.ndarray) -> float:
        return float(self.c_out @ X)

    def toggles(self, d: float, t0: float, t1: float) -> list[tuple[float, int, float]]:
        """(time, 'on' 1 / 'off' 0, dt/dd) of the switch's changes in (t0, t1) (times after the sampling instant)."""
        c = self.c
        out = []
        dthr = d - self.thr
        if dthr <= 0.0 or dthr > 1.0:
            return out
        td = c.saw_td - self.t_s  # the saw's start, on this clock
        k = math.floor((t0 - td) / self.per) - 1
        while td + k * self.per < t1:
            base = td + k * self.per
            t_off = base + dthr * c.saw_tr
            t_on = base + c.saw_tr + c.saw_pw + (1.0 - dthr) * c.saw_tf
            if t0 < t_off < t1:
                out.append((t_off, 0, c.saw_tr))
            if t0 < t_on < t1:
                out.append((t_on, 1, -c.saw_tf))
            k += 1
        return sorted(out)

    def switch_on(self, d: float, t: float) -> bool:
        c = self.c
        s = (t + self.t_s - c.saw_td) % self.per
        saw = s / c.saw_tr if s < c.saw_tr else 1.0 if s < c.saw_tr + c.saw_pw else \
            1.0 - (s - c.saw_tr - c.saw_pw) / c.saw_tf if s < c.saw_tr + c.saw_pw + c.saw_tf else 0.0
        return saw < d - self.thr

    def period(self, X0: np.ndarray) -> tuple[np.ndarray, list]:
        """One period from a sampling instant to the next: the state there and the orbit's segments and events."""
        X = X0.copy()
        rec: list = []
        # the sampling instant: the NN's inputs and output
        if self.controller == "nn":
            X = self._sample(X)
            rec.append(("sample", X0.copy()))
        # the switch follows the duty in force until pwmclk's slave, the new one after it
        marks = [(self.t_pm, "pm"), (self.t_ps, "ps"), (self.per, "end")]
        t, d = 0.0, X[self.i_duty]
        plant = self._plant_mode(self.switch_on(d, 0.0), X)
        il = self.xi.index(IL)
        if plant != 0 and X[il] <= DCM_CURRENT:  # discontinuous conduction at the sampling instant: iL held at 0
            X = X.copy()
            X[il] = 0.0
            plant = 2
            rec.append(("reset", il))
        for t_mark, what in marks:
            for t_sw, on, dtdd in self.toggles(d, t, t_mark):
                X, t, plant = self._run(X, t, t_sw, plant, rec)
                new = self._plant_mode(bool(on), X)
                rec.append(("toggle", t, X.copy(), plant, new, dtdd))  # dt/dd of the duty in force then
                plant = new
            X, t, plant = self._run(X, t, t_mark, plant, rec)
            if what == "pm":
                X = X.copy()
                X[self.i_dcmd] = self._command(X)
                rec.append(("pm", X.copy()))
            elif what == "ps":
                X = X.copy()
                X[self.i_duty] = X[self.i_dcmd]
                d = X[self.i_duty]
                new = self._plant_mode(self.switch_on(d, t), X)
                rec.append(("ps", t, X.copy(), plant, new))
                plant = new
        return X, rec

    def _plant_mode(self, on: bool, X: np.ndarray) -> int:
        if on:
            return 0
        return 1 if X[self.xi.index(IL)] > 0.0 else 2

    def _run(self, X: np.ndarray, t: float, t1: float, plant: int, rec: list) -> tuple[np.ndarray, float, int]:
        """Flow from t to t1, stopping where the diode current reaches zero (discontinuous conduction)."""
        il = self.xi.index(IL)
        while t1 - t > 1e-15:
            m = self.mode(plant)
            h = t1 - t
            if plant == 1:  # the diode conducts: find where iL reaches 0
                grid = np.linspace(0.0, h, 9)[1:]
                below = np.flatnonzero(self._flow_state(X, m, grid, il) <= 0.0)
                if len(below):
                    hit = int(below[0])
                    lo = 0.0 if hit == 0 else grid[hit - 1]
                    hi = grid[hit]
                    for _ in range(60):  # safeguarded Newton (bisection where it would leave the bracket)
                        Xm = self._flow(X, m, hi)
                        slope = self._deriv(Xm, m)[il]
                        nxt = hi - Xm[il] / slope if slope < 0 else 0.5 * (lo + hi)
                        if not lo < nxt < hi + 1e-18 or not np.isfinite(nxt):
                            nxt = 0.5 * (lo + hi)
                        if self._flow(X, m, nxt)[il] > 0.0:
                            lo = nxt
                        else:
                            hi = nxt
                        if hi - lo < 1e-15 * max(1.0, hi) or abs(Xm[il]) < 1e-13:
                            break
                    X0 = X
                    X = self._flow(X0, m, hi)
                    rec.append(("flow", m, hi, X0.copy()))
                    X = X.copy()
                    X[il] = 0.0
                    rec.append(("dcm", t + hi, X.copy(), 1, 2))
                    t, plant = t + hi, 2
                    continue
            rec.append(("flow", m, h, X.copy()))
            X = self._flow(X, m, h)
            t = t1
        return X, t, plant

    def _sample(self, X: np.ndarray) -> np.ndarray:
        p, vmax = self.p, self.p.vmax
        X = X.copy()
        h = X[self.i_held:self.i_held + 19].copy()
        vo = self.vout(X) / vmax
        e = (vo * vmax - p.vref) / vmax
        new = h.copy()
        for first in (0, 5, 10):
            new[first + 1:first + 5] = h[first:first + 4]
        new[0], new[5], new[10] = vo, e, X[self.i_duty]
        new[15], new[16] = p.vin / vmax, p.vref / vmax
        new[18] = h[18] + e
        new[17] = new[10] - new[11]
        X[self.i_held:self.i_held + 19] = new
        if self.delay:
            fifo = X[self.i_fifo:self.i_fifo + self.delay].copy()
            X[self.i_fifo + 1:self.i_fifo + self.delay] = fifo[:-1]
            X[self.i_fifo] = X[self.i_out]
        X[self.i_out] = float(self._net_value(new)[0])
        return X

    def _command(self, X: np.ndarray) -> float:
        if self.controller == "teacher":
            return min(max(X[self.xi.index(OI)], 0.0), 1.0)
        applied = X[self.i_fifo + self.delay - 1] if self.delay else X[self.i_out]
        return min(max(applied, 0.0), 1.0)


# --- the linearised period: p' = (A - s I) p + b on segments, jumps at events ------------------------------------------

def _event_matrix(loop: Loop, item, s: complex, inject: bool) -> np.ndarray:
    """The affine map of one recorded item on [p; 1; integral of V(out)], (n + 2) x (n + 2)."""
    n = loop.n
    E = np.eye(n + 2, dtype=complex)
    kind = item[0]
    nx = len(loop.xi)
    if kind == "flow":  # the circuit's states: p' = (A - s) p + b, V(out) integrated; the clocked ones: e^(-s h)
        _, m, h, _ = item
        Z = np.zeros((nx + 2, nx + 2), dtype=complex)
        Z[:nx, :nx] = loop.A[m][np.ix_(loop.xi, loop.xi)] - s * np.eye(nx)
        if inject:
            Z[:nx, nx] = loop.b_sense[m][:nx]
        Z[nx + 1, :nx] = loop.c_out[:nx]
        F = sla.expm(Z * h)
        idx = list(range(nx)) + [n, n + 1]
        E[np.ix_(idx, idx)] = F
        E[range(nx, n), range(nx, n)] = np.exp(-s * h)
        return E
    if kind == "sample":  # the NN's clocked inputs (and its delay line) at the sampling instant
        X0 = item[1]
        vmax, hi = loop.p.vmax, loop.i_held
        S = np.zeros((n, n))
        keep = [i for i in range(n) if not (hi <= i < hi + 19) and i != loop.i_out
                and not (loop.delay and loop.i_fifo <= i < loop.i_fifo + loop.delay)]
        S[keep, keep] = 1.0
        vo = loop.c_out / vmax  # d(new NNin1)/dX
        new = np.zeros((19, n))
        new[0], new[5] = vo, vo
        new[10, loop.i_duty] = 1.0
        for first in (0, 5, 10):
            for j in range(1, 5):
                new[first + j, hi + first + j - 1] = 1.0
        new[18] = vo
        new[18, hi + 18] += 1.0
        new[17] = new[10] - new[11]
        S[hi:hi + 19] = new
        if loop.delay:
            S[loop.i_fifo, loop.i_out] = 1.0
            for j in range(1, loop.delay):
                S[loop.i_fifo + j, loop.i_fifo + j - 1] = 1.0
        held = loop._sample(X0)[hi:hi + 19]
        _, J = loop._net(held)
        S[loop.i_out] = J @ new
        E[:n, :n] = S
        if inject:  # the injection at the sampling instant (t = 0 of the period: e^(s 0) = 1)
            r = np.zeros(n)
            r[hi + 0] = r[hi + 5] = r[hi + 18] = 1.0 / vmax
            r[loop.i_out] = J @ r[hi:hi + 19]
            E[:n, n] = r
        return E
    if kind == "pm":  # the duty command: the teacher's output or the NN's (delayed), limited to 0..1
        X = item[1]
        src = (loop.xi.index(OI) if loop.controller == "teacher" else
               loop.i_fifo + loop.delay - 1 if loop.delay else loop.i_out)
        E[loop.i_dcmd, :n] = 0.0
        if 0.0 < X[loop.i_dcmd] < 1.0:  # at a limit the command does not move (a Newton step on the way may be there)
            E[loop.i_dcmd, src] = 1.0
        return E
    if kind == "ps":  # the duty takes the command
        E[loop.i_duty, :n] = 0.0
        E[loop.i_duty, loop.i_dcmd] = 1.0
        return E
    if kind == "toggle":  # the duty moves the switching instant: the state follows the old vector field longer
        _, _, X, before, after, dtdd = item
        f0, f1 = loop._deriv(X, loop.mode(before)), loop._deriv(X, loop.mode(after))
        E[:nx, loop.i_duty] += (f0 - f1) * dtdd
        return E
    if kind == "reset":  # iL held at 0 (discontinuous conduction from the start of the period)
        E[item[1], :] = 0.0
        return E
    if kind == "dcm":  # iL reaches 0 (a state-dependent event), iL held at 0 after it: saltation
        _, _, X, before, after = item
        il = loop.xi.index(IL)
        f0, f1 = loop._deriv(X, loop.mode(before)), loop._deriv(X, loop.mode(after))
        R = np.eye(nx)
        R[il, il] = 0.0
        S = R + np.outer(f1 - R @ f0, np.eye(nx)[il]) / f0[il]
        E[:nx, :nx] = S
        return E
    raise AssertionError(kind)


def linearised_period(loop: Loop, segments: list, s: complex, inject: bool, cache: dict | None = None) -> np.ndarray:
    """The composed map of one period on [p; 1; integral of V(out)] at the orbit, (n + 2) x (n + 2). The clocked
    events' matrices do not depend on s: ``cache`` keeps them across frequencies."""
    G = np.eye(loop.n + 2, dtype=complex)
    for k, item in enumerate(segments):
        if item[0] == "flow" or cache is None:
            E = _event_matrix(loop, item, s, inject)
        else:
            E = cache.get((k, inject))
            if E is None:
                E = cache[(k, inject)] = _event_matrix(loop, item, s, inject)
        G = E @ G
    return G


def period_jacobian(loop: Loop, segments: list) -> np.ndarray:
    """d(state after one period) / d(state before), at the orbit (s = 0, no injection)."""
    return compose(loop, segments, np.zeros(1), False)[0, :loop.n, :loop.n].real


def _initial_state(loop: Loop) -> np.ndarray:
    """A start for Newton: the averaged converter at vref, the duty vref/vin, the NN's inputs there."""
    p, X = loop.p, np.zeros(loop.n)
    d0 = min(max(p.vref / p.vin, 0.02), 0.98)
    i0 = p.vref / p.ro
    for i, v in ((IL, i0), (VC, p.vref), (ILO, i0)):
        X[loop.xi.index(i)] = v
    if loop.controller == "teacher":
        X[loop.xi.index(OI)] = d0
    else:
        h = np.zeros(19)
        h[0:5], h[10:15], h[15], h[16] = p.vref / p.vmax, d0, p.vin / p.vmax, p.vref / p.vmax
        h[18] = _accumulator_for(loop, h, d0)
        X[loop.i_held:loop.i_held + 19] = h
        X[loop.i_out] = d0
        if loop.delay:
            X[loop.i_fifo:loop.i_fifo + loop.delay] = d0
    X[loop.i_duty] = X[loop.i_dcmd] = d0
    return X


def _accumulator_for(loop: Loop, held: np.ndarray, d0: float) -> float:
    """NNin19 at which the network gives ``d0`` with the other inputs at the averaged steady state (0 if none)."""
    grid = np.linspace(-40.0, 40.0, 161)
    rows = np.repeat(held[None, :], len(grid), axis=0)
    rows[:, 18] = grid
    outs = loop._net_value(rows) - d0
    sign = np.flatnonzero(np.sign(outs[:-1]) * np.sign(outs[1:]) < 0)
    if not len(sign):
        return float(grid[np.argmin(np.abs(outs))])
    k = sign[np.argmin(np.abs(grid[sign]))]
    return float(grid[k] - outs[k] * (grid[k + 1] - grid[k]) / (outs[k + 1] - outs[k]))


def find_orbit(loop: Loop, max_iter: int = 60, tol: float = 1e-9) -> Orbit:
    """The periodic operating point by Newton on the period map (Jacobian from the linearised period)."""
    X = _initial_state(loop)
    scale = np.maximum(1.0, np.abs(X))
    free = _outside_loop(loop, X)  # NNin19 of a network that does not read it integrates by itself: not periodic
    for it in range(1, max_iter + 1):
        Y, segments = loop.period(X)
        R = Y - X
        R[free] = 0.0
        res = float(np.max(np.abs(R) / scale))
        M = period_jacobian(loop, segments)
        if res < tol:
            return Orbit(X=X, duty=float(X[loop.i_duty]), segments=segments, iterations=it, residual=res, jacobian=M)
        K = M - np.eye(loop.n)
        K[free, :] = 0.0
        K[free, free] = 1.0  # keep it where it is
        step = np.linalg.lstsq(K, -R, rcond=None)[0]
        lam = 1.0
        inside = not _at_limit(loop, segments)
        for _ in range(12):  # a full Newton step unless it throws the state far off (non-monotone: the switching
            Xn = X + lam * step  # instants and the conduction modes make the first steps grow the residual a little)
            Yn, seg_n = loop.period(Xn)  # or onto a duty limit, where the command has no gain to steer by
            Rn = Yn - Xn
            Rn[free] = 0.0
            rn = float(np.max(np.abs(Rn) / scale))
            if np.isfinite(rn) and rn < 100.0 * max(res, 1e-3) and not (inside and _at_limit(loop, seg_n)):
                break
            lam /= 2
        X = X + lam * step
    rho = float(np.max(np.abs(np.linalg.eigvals(M))))
    raise PopError(f"no periodic operating point at vin {loop.p.vin:g} V, vref {loop.p.vref:g} V, ro {loop.p.ro:g} Ohm "
                   f"for the {loop.controller}: Newton on the period map did not converge in {max_iter} iterations "
                   f"(residual {res:.2g}); the linearised period map's largest |eigenvalue| there is {rho:.3f}"
                   + (" (> 1: the loop oscillates, saturates or has an orbit of more than one period); measure it "
                      "by injection (--method inject)" if rho > 1 else ""))


def critical_pole(loop: Loop, orbit: Orbit) -> float:
    """The largest |eigenvalue| of the loop's linearised period map at ``orbit`` (its slowest mode; >= 1: unstable)."""
    M = orbit.jacobian if orbit.jacobian is not None else period_jacobian(loop, orbit.segments)
    keep = _loop_states(loop, M)
    return float(np.max(np.abs(np.linalg.eigvals(M[np.ix_(keep, keep)]))))


def loop_gain(controller: str, actor: nn.Module | None, params: EpisodeParams, f_Hz) -> LoopGain:
    """T(f) = -V(out)/V(vsense) of the loop broken at the sensed Vout, from its periodic operating point."""
    f = np.asarray(f_Hz, dtype=float)
    loop = Loop(controller, actor, params)
    if not (np.all(f > 0) and np.all(f <= params.fsw / 2)):
        raise PopError(f"frequencies must lie in (0, fsw/2] = (0, {params.fsw / 2:g}] Hz; got {f.min():g}..{f.max():g}")
    orbit = find_orbit(loop)
    limited = [item[1][loop.i_dcmd] for item in orbit.segments if item[0] == "pm" and not 0.0 < item[1][loop.i_dcmd] < 1.0]
    if limited:
        raise PopError(f"the {controller}'s duty command sits at {limited[0]:g} on the orbit at vin {params.vin:g} V, "
                       f"vref {params.vref:g} V (a limit of 0..1): no small-signal path through it, no loop gain there")
    rho = critical_pole(loop, orbit)
    if rho >= 1.0:
        raise PopError(f"the periodic operating point of the {controller} at vin {params.vin:g} V, vref {params.vref:g} "
                       f"V is unstable: the linearised period map's largest |eigenvalue| is {rho:.3f} (>= 1: the "
                       "loop oscillates); there is no loop gain to measure around it")
    return LoopGain(f, loop_gain_fast(loop, orbit, f), rho, orbit)


def loop_gain_reference(loop: Loop, orbit: Orbit, f: np.ndarray) -> np.ndarray:
    """T frequency by frequency with a matrix exponential per segment: slow, plainly the definition (the tests hold
    ``loop_gain_fast`` to it)."""
    n = loop.n
    T = np.empty(len(f), dtype=complex)
    cache: dict = {}
    for k, fk in enumerate(f):
        G = linearised_period(loop, orbit.segments, 2j * math.pi * fk, True, cache)
        p0 = np.linalg.solve(np.eye(n) - G[:n, :n], G[:n, n])
        vout = (G[n + 1, :n] @ p0 + G[n + 1, n]) / loop.per  # the fundamental of V(out) per unit injection
        T[k] = -vout / (vout + 1.0)
    return T


def _at_limit(loop: Loop, segments: list) -> bool:
    """The duty command at 0 or 1 somewhere in the period."""
    return any(item[0] == "pm" and not 0.0 < item[1][loop.i_dcmd] < 1.0 for item in segments)


def _outside_loop(loop: Loop, X: np.ndarray) -> list[int]:
    """The accumulator NNin19 when the network's output does not depend on it (its weight zero)."""
    if loop.controller != "nn":
        return []
    _, J = loop._net(X[loop.i_held:loop.i_held + 19])
    return [loop.i_held + 18] if J[18] == 0.0 else []


def _loop_states(loop: Loop, M: np.ndarray) -> list[int]:
    """The states that take part in the loop: an input the network ignores (NNin19 of one that does not read it)
    integrates by itself, a pole at 1 outside the loop."""
    keep = list(range(loop.n))
    if loop.controller == "nn":
        acc = loop.i_held + 18
        if np.allclose(M[np.arange(loop.n) != acc, acc], 0.0):
            keep.remove(acc)
    return keep


def applies(actor, points: list[EpisodeParams], simulator) -> bool:
    """Whether POP + AC can take these points: the fast model, a PyTorch network, no ADC or sensor noise."""
    from ..engines import is_fast
    return (is_fast(simulator) and isinstance(actor, nn.Module)
            and not any(p.adc_levels or p.noise_mV for p in points))


def measure_pop(actor, points: list[EpisodeParams], freqs, controllers: tuple[str, ...] = ("nn", "teacher")):
    """``buckbi.loopgain.measure``'s long table (one row per point, controller and frequency) from POP + AC: the same
    columns, the injection's amplitudes empty, the critical pole added; a point without an orbit is one error row
    per frequency, as a failed injection is."""
    import pandas as pd
    from .result import FraResult
    records = []
    for k, point in enumerate(points, 1):
        for who in controllers:
            base = {"point": k, "vin": point.vin, "vref": point.vref, "ro": point.ro, "Lo": point.Lo,
                    "controller": who, "method": "pop"}
            try:
                lg = loop_gain(who, actor if who == "nn" else None, point, freqs)
            except PopError as err:
                records += [base | {"f_Hz": f, "gain_dB": math.nan, "phase_deg": math.nan, "critical_pole": math.nan,
                                    "error": str(err)} for f in np.asarray(freqs, float)]
                continue
            records += [base | {"f_Hz": f, "gain_dB": g, "phase_deg": ph, "critical_pole": lg.critical_pole,
                                "error": ""} for f, g, ph in zip(lg.f_Hz, lg.gain_dB, lg.phase_deg)]
    return FraResult(pd.DataFrame(records), list(points))


# --- differentiable with respect to the network's parameters (at the fixed orbit) -------------------------------------

@dataclass
class TorchLoopGain:
    """T(f), the margins and the critical pole as torch tensors that carry the network's parameters' gradient (the
    orbit held fixed: the network enters through its Jacobian at the orbit's inputs)."""

    f_Hz: np.ndarray
    T: torch.Tensor  # complex
    phase_margin_deg: torch.Tensor
    gain_margin_dB: torch.Tensor  # inf (a constant) where the phase never crosses -180 in range
    crossover_Hz: float
    critical_pole: torch.Tensor
    orbit: Orbit


class FixedOrbitLoopGain:
    """The NN loop's T(f) at one periodic operating point as a function of the network's parameters (the orbit held
    fixed: the network enters through its Jacobian at the orbit's inputs). The rest of the period is composed once
    per frequency list, so a learner can evaluate it at every optimiser step for the cost of one Jacobian."""

    def __init__(self, actor: nn.Module, params: EpisodeParams, orbit: Orbit | None = None):
        self.loop = loop = Loop("nn", actor, params)
        self.orbit = orbit if orbit is not None else find_orbit(loop)
        segments = self.orbit.segments
        if segments[0][0] != "sample":
            raise AssertionError("an NN period starts at its sampling instant")
        n, hi = loop.n, loop.i_held
        self.held = loop._sample(segments[0][1])[hi:hi + 19]
        self.base = torch.from_numpy(_event_matrix(loop, segments[0], 0.0, True))  # its NN row rebuilt from J
        self.new = torch.from_numpy(self.base[hi:hi + 19, :n].real.numpy().copy())  # held inputs after the sample
        self.r_held = torch.from_numpy(self.base[hi:hi + 19, n].real.numpy().copy())
        self.after = segments[1:]  # the rest of the period: no parameter in it
        self._rest: dict = {}

    def jacobian(self, actor: nn.Module) -> torch.Tensor:
        """d output / d inputs at the orbit's held inputs, a function of the parameters."""
        dtype = next(actor.parameters()).dtype  # the caller's network as it is: its parameters carry the gradient
        x = torch.tensor(self.held, dtype=dtype, requires_grad=True)
        (J,) = torch.autograd.grad(actor(x[None, :])[0, 0], x, create_graph=True)
        return J.to(torch.float64)

    def sample_matrix(self, actor: nn.Module) -> torch.Tensor:
        J, n, E = self.jacobian(actor), self.loop.n, self.base.clone()
        E[self.loop.i_out, :n] = (J @ self.new).to(torch.complex128)
        E[self.loop.i_out, n] = (J @ self.r_held).to(torch.complex128)
        return E

    def rest(self, s: np.ndarray, inject: bool = True) -> torch.Tensor:
        key = (s.tobytes(), inject)
        if key not in self._rest:
            if len(self._rest) > 8:
                self._rest.clear()
            self._rest[key] = torch.from_numpy(compose(self.loop, self.after, s, inject))
        return self._rest[key]

    def T(self, actor: nn.Module, f_Hz, Es: torch.Tensor | None = None) -> torch.Tensor:
        """T at every frequency of ``f_Hz`` (complex, differentiable)."""
        n, loop = self.loop.n, self.loop
        G = self.rest(2j * math.pi * np.asarray(f_Hz, dtype=float)) @ (self.sample_matrix(actor) if Es is None else Es)
        eye = torch.eye(n, dtype=torch.complex128)
        p0 = torch.linalg.solve(eye - G[:, :n, :n], G[:, :n, n:n + 1])[:, :, 0]
        vout = ((G[:, n + 1, :n] * p0).sum(-1) + G[:, n + 1, n]) / loop.per
        return -vout / (vout + 1.0)

    def period_map(self, Es: torch.Tensor) -> torch.Tensor:
        n = self.loop.n
        return (self.rest(np.zeros(1), False)[0] @ Es)[:n, :n]


def orbit_at_teacher(actor: nn.Module, params: EpisodeParams, teacher: Orbit | None = None) -> Orbit:
    """The network's loop placed on the teacher's periodic operating point: the plant's state there, the held inputs
    the teacher's orbit samples, the accumulator at which the network gives the teacher's duty. Where the network
    imitates the teacher this is its own orbit; elsewhere (even where its own loop has none) it is the point at which
    to compare their small-signal laws."""
    if teacher is None:
        teacher = find_orbit(Loop("teacher", None, params))
    loop = Loop("nn", actor, params)
    p, d = params, teacher.duty
    X = np.zeros(loop.n)
    X[:len(loop.xi)] = teacher.X[list(loop.xi)]
    vo = loop.vout(X) / p.vmax
    h = np.zeros(19)
    h[0:5], h[5:10], h[10:15] = vo, vo - p.vref / p.vmax, d
    h[15], h[16] = p.vin / p.vmax, p.vref / p.vmax
    h[18] = _accumulator_for(loop, h, d)
    X[loop.i_held:loop.i_held + 19] = h
    X[loop.i_out] = d
    if loop.delay:
        X[loop.i_fifo:loop.i_fifo + loop.delay] = d
    X[loop.i_duty] = X[loop.i_dcmd] = d
    _, segments = loop.period(X)
    return Orbit(X=X, duty=d, segments=segments)


def loop_gain_torch(actor: nn.Module, params: EpisodeParams, f_Hz, orbit: Orbit | None = None) -> TorchLoopGain:
    """The NN loop's T(f), phase and gain margin and critical pole, differentiable with respect to ``actor``'s
    parameters. ``orbit``: the periodic operating point to linearise at (found when not given); it is held fixed, so
    the gradient is the one at that orbit (what a learner's loss term needs between two orbit searches)."""
    from .margins import margins
    f = np.asarray(f_Hz, dtype=float)
    fixed = FixedOrbitLoopGain(actor, params, orbit)
    loop, orbit, n = fixed.loop, fixed.orbit, fixed.loop.n
    Es = fixed.sample_matrix(actor)

    def T_at(freqs: np.ndarray) -> torch.Tensor:
        return fixed.T(actor, freqs, Es)

    T = T_at(f)
    M = fixed.period_map(Es)
    keep = _loop_states(loop, M.detach().real.numpy())
    rho = torch.linalg.eigvals(M[keep][:, keep]).abs().max()
    m = margins(f, T.detach().numpy())
    pm, gm = torch.tensor(math.nan, dtype=torch.float64), torch.tensor(math.inf, dtype=torch.float64)
    def refine(f0: float, g) -> float:
        """The frequency where g(T(f)) = 0, from the grid's interpolated estimate (secant on the exact T)."""
        a, b = f0 * (1 - 1e-3), f0 * (1 + 1e-3)
        ga, gb = g(T_at(np.array([a])).detach().numpy()[0]), g(T_at(np.array([b])).detach().numpy()[0])
        for _ in range(30):
            if gb == ga:
                break
            a, b, ga = b, b - gb * (b - a) / (gb - ga), gb
            gb = g(T_at(np.array([b])).detach().numpy()[0])
            if abs(b - a) < 1e-10 * b:
                break
        return float(b)

    if math.isfinite(m.crossover_Hz):  # 180 + phase at the crossover, the crossover moving with the parameters
        fc = refine(m.crossover_Hz, lambda T: math.log(abs(T)))
        Tc = T_at(np.array([fc * (1 - 1e-4), fc, fc * (1 + 1e-4)]))
        mag, ph = Tc.abs(), torch.angle(Tc)
        dmag_df = float((mag[2] - mag[0]).detach()) / (2e-4 * fc)
        dph_df = float(np.angle((Tc[2] / Tc[0]).detach().numpy())) / (2e-4 * fc)  # (no wrap: a ratio)
        dfc = -(mag[1] - 1.0) / dmag_df  # zero at these parameters; its gradient moves the crossover
        pm = 180.0 + torch.rad2deg(_wrap(ph[1]) + dph_df * dfc)
    if math.isfinite(m.gain_margin_dB):
        fg = refine(m.gain_margin_Hz, lambda T: math.remainder(np.angle(T) - math.pi, 2 * math.pi))
        Tg = T_at(np.array([fg * (1 - 1e-4), fg, fg * (1 + 1e-4)]))
        mag, ph = Tg.abs(), torch.angle(Tg)
        dmag_df = float((mag[2] - mag[0]).detach()) / (2e-4 * fg)
        dph_df = float(np.angle((Tg[2] / Tg[0]).detach().numpy())) / (2e-4 * fg)  # (the phase wraps at -180)
        dfg = -(torch.remainder(ph[1], 2 * math.pi) - math.pi) / dph_df  # the phase crossing -180 moves with them
        gm = -20.0 * torch.log10(mag[1] + dmag_df * dfg)
    return TorchLoopGain(f, T, pm, gm, fc if math.isfinite(m.crossover_Hz) else math.nan, rho, orbit)


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    """A phase in radians into (-2 pi, 0]: the loop gain's phase near a crossover lies below zero."""
    return torch.remainder(phase, 2 * math.pi) - 2 * math.pi


# --- every frequency at once, in modal form (the fast path; linearised_period is its reference) --------------------

def _phi(mu: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """e^(mu h), phi1 = (e^(mu h) - 1) / mu and phi2 = (e^(mu h) - 1 - mu h) / mu^2 (series where mu h is small)."""
    z = mu * h
    e = np.exp(z)
    small = np.abs(z) < 1e-4
    if not small.any():
        return e, (e - 1) / mu, (e - 1 - z) / (mu * mu)
    safe = np.where(small, 1.0, mu)
    p1 = (e - 1) / safe
    p2 = (e - 1 - z) / (safe * safe)
    if small.any():
        zs, hs = z[small], np.broadcast_to(h, z.shape)[small]
        p1[small] = hs * (1 + zs / 2 + zs * zs / 6)
        p2[small] = hs * hs * (0.5 + zs / 6 + zs * zs / 24)
    return e, p1, p2


def _modes(loop: Loop) -> dict:
    """Per mode: the eigen decomposition of the circuit's block, and the sensed voltage's column in modal form."""
    if not hasattr(loop, "_modal"):
        nx = len(loop.xi)
        out = {}
        for m in range(len(loop.A)):
            lam, V = np.linalg.eig(loop.A[m][np.ix_(loop.xi, loop.xi)])
            Vi = np.linalg.inv(V)
            out[m] = (lam, V, Vi, Vi @ loop.b_sense[m][:nx], loop.c_out[:nx] @ V)
        loop._modal = out
    return loop._modal


def compose(loop: Loop, segments: list, s: np.ndarray, inject: bool) -> np.ndarray:
    """The period's map on [p; 1; integral of V(out)] at every s at once, (len(s), n + 2, n + 2): the clocked events'
    matrices once, the flows in modal form (``linearised_period`` is the same, one s and a matrix exponential per
    segment)."""
    n, nx = loop.n, len(loop.xi)
    K = len(s)
    modal = _modes(loop)
    G = np.broadcast_to(np.eye(n + 2, dtype=complex), (K, n + 2, n + 2)).copy()
    events = _events(loop, segments, inject)
    for k, item in enumerate(segments):
        if item[0] != "flow":
            G = events[k] @ G
            continue
        _, m, h, _ = item
        lam, V, Vi, b_m, c_m = modal[m]
        e, p1, p2 = _phi(lam[None, :] - s[:, None], h)  # (K, nx)
        new = np.empty_like(G)
        zx = Vi @ G[:, :nx, :]  # the circuit's rows, in modal coordinates
        one = G[:, n, :]  # the row of the constant 1 (the injection's unit amplitude)
        ez = e[:, :, None] * zx
        iz = p1[:, :, None] * zx
        if inject:
            ez += (p1 * b_m)[:, :, None] * one[:, None, :]
            iz += (p2 * b_m)[:, :, None] * one[:, None, :]
        new[:, :nx, :] = V @ ez
        new[:, nx:n, :] = np.exp(-s * h)[:, None, None] * G[:, nx:n, :]
        new[:, n, :] = one
        new[:, n + 1, :] = G[:, n + 1, :] + (c_m @ iz)
        G = new
    return G


def _events(loop: Loop, segments: list, inject: bool) -> dict[int, np.ndarray]:
    """The clocked events' matrices of a recorded period (they do not depend on s), kept with the segments."""
    key = (id(segments), len(segments), inject)
    cache = getattr(loop, "_event_cache", None)
    if cache is None or cache[0] != key:
        cache = (key, {k: _event_matrix(loop, item, 0.0, inject) for k, item in enumerate(segments)
                       if item[0] != "flow"}, segments)  # (the segments kept: their id stays theirs)
        loop._event_cache = cache
    return cache[1]


def loop_gain_fast(loop: Loop, orbit: Orbit, f: np.ndarray) -> np.ndarray:
    """T at every frequency of ``f`` in one pass over the orbit's segments."""
    n = loop.n
    G = compose(loop, orbit.segments, 2j * math.pi * np.asarray(f, dtype=float), True)
    p0 = np.linalg.solve(np.eye(n)[None] - G[:, :n, :n], G[:, :n, n][:, :, None])[:, :, 0]
    vout = (np.einsum("kj,kj->k", G[:, n + 1, :n], p0) + G[:, n + 1, n]) / loop.per
    return -vout / (vout + 1.0)
