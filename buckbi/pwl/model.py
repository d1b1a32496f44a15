"""State equations of a gym per conduction and clamp mode, and their modal (eigen) form for the kernel.

State x = [iL, vC, iLo, q1, q2, q3, oi]: filter inductor current, capacitor voltage (its ESR is algebraic),
load inductor current, the voltages across CT1, CT2, CT3 (t1-inv, nnpwm-inv, t3-inv) and the op-amp's
internal node. Inputs u = [1, ref(t), iload(t), vin(t), noise(t), held_fb], piecewise linear in time (the
scenario's parts; the noise and the teacher's held ADC sample piecewise constant, set by the kernel), so the
matrices depend on the load only: vin enters through B. Per mode dx/dt = A x + B u.
Left out, and measured to be below ngspice's own step error at the sampled rows: the capacitor's 12.9 nH ESL,
the 1 pF across Lo, the off switch's 1 MOhm; the diode is its exponential law linearised around IDIODE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .circuit import GymCircuit

N_STATES, N_INPUTS = 7, 6
OC, OS = 7, 8  # with a loop-gain injection the state also holds its oscillator: v_inj = amp * sin(w t) = amp * x[OS]
N_INJECT = N_STATES + 2
IL, VC, ILO, Q1, Q2, Q3, OI = range(N_STATES)
# NOISE: added to the sensed Vout (held per period by the kernel); HELD_FB: the teacher's feedback when it reads
# the ADC (its quantised, held sample of the sensed Vout / vmax, set by the kernel at each ctrlclk edge).
ONE, REF, ILOAD, VIN, NOISE, HELD_FB = range(N_INPUTS)
PLANT_MODES = ("on", "diode", "dcm")
TEACHER_MODES = ("linear", "sat_hi", "sat_lo", "clamp_hi", "clamp_lo")
N_MODES = len(PLANT_MODES) * len(TEACHER_MODES)
# Event functions the kernel watches: iL (diode -> dcm), oi (clamps), the op-amp's drive (clamp release).
EV_IL, EV_OI, EV_DRIVE = range(3)
IDIODE = 3.0  # A: the diode's exponential law is linearised (tangent) at this current
THERMAL_VOLTAGE = 1.380649e-23 * 300.15 / 1.602176634e-19  # SPICE's default TNOM, 27 C


def mode_index(plant: int, teacher: int) -> int:
    return plant * len(TEACHER_MODES) + teacher


@dataclass
class ModalModel:
    """Per-mode eigen form: x = Re(V z), dz/dt = lam z + Vi B u; event rows c.x + d.u in modal form."""

    lam: np.ndarray  # (modes, n) complex
    V: np.ndarray  # (modes, n, n) complex
    Vi: np.ndarray  # (modes, n, n) complex
    ViB: np.ndarray  # (modes, n, inputs) complex
    ev_z: np.ndarray  # (modes, 3, n) complex: event rows times V
    ev_u: np.ndarray  # (modes, 3, inputs)
    A: np.ndarray  # (modes, n, n) real, for the reference integrator and tests
    B: np.ndarray  # (modes, n, inputs)
    ev_x: np.ndarray  # (modes, 3, n) real
    ev_abs: np.ndarray  # (modes, 3, n): |ev_z|, for the kernel's bound on how far an event function can move
    cap: np.ndarray  # (modes, n): 2 / |lam| (inf for lam = 0): |e^(lam s) - 1| <= min(|lam| s, 2)
    bounded: np.ndarray  # (modes,) bool: every Re(lam) <= 0, where that bound holds

    def kernel_arrays(self) -> tuple:
        """The model's arrays in the order ``kernel.episode`` takes them."""
        return self.lam, self.V, self.Vi, self.ViB, self.ev_z, self.ev_u, self.ev_abs, self.cap, self.bounded


def diode_line(c: GymCircuit, i0: float = IDIODE) -> tuple[float, float]:
    """Offset and slope of the diode's forward voltage, tangent to n*Vt*ln(1+I/Is) + Rs*I at ``i0``."""
    nvt = c.diode_n * THERMAL_VOLTAGE
    v0 = nvt * math.log1p(i0 / c.diode_is) + c.diode_rs * i0
    slope = nvt / (i0 + c.diode_is) + c.diode_rs
    return v0 - slope * i0, slope


def mode_equations(c: GymCircuit, ro: float, Lo: float, vmax: float, load_step: bool,
                   plant: int, teacher: int, inject: tuple[float, float] | None = None, teacher_adc: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A, B and the event rows (over x and u) of one mode; ``inject`` = (amplitude V, frequency Hz) adds the
    injection oscillator to the state (exact: a sine between events is the solution of a linear system);
    ``teacher_adc``: the teacher reads the held ADC sample (input HELD_FB) instead of the sensed Vout."""
    n = N_STATES if inject is None else N_INJECT
    w = n + N_INPUTS  # a linear form over [x, u]
    vout = np.zeros(w)
    vout[[IL, VC, ILO, n + ILOAD]] = [c.Rc, 1.0, -c.Rc, -c.Rc]
    rows = np.zeros((n, w))
    vd0, rd = diode_line(c)
    if plant == 0:  # switch on: sw = vin - ron iL
        rows[IL, IL] = -c.ron - c.RL
        rows[IL, n + VIN] = 1.0
    elif plant == 1:  # diode conducts: sw = -(vd0 + rd iL)
        rows[IL, IL] = -rd - c.RL
        rows[IL, n + ONE] = -vd0
    if plant != 2:
        rows[IL] = (rows[IL] - vout) / c.L
    rows[VC, [IL, ILO, n + ILOAD]] = [1 / c.C, -1 / c.C, -1 / c.C]
    if not load_step:
        rows[ILO] = (vout - ro * np.eye(w)[ILO]) / Lo
    # Teacher: nnpwm = oi (linear) or the clamp value; inv = nnpwm - q2, t1 = inv + q1, t3 = inv + q3.
    clamped_oi = {3: c.clamp_hi, 4: c.clamp_lo}.get(teacher)
    nnpwm = np.zeros(w)
    if teacher == 0:
        nnpwm[OI] = 1.0
    elif teacher in (1, 3):
        nnpwm[n + ONE] = 1.0
    inv = nnpwm.copy()
    inv[Q2] -= 1.0
    sensed = vout.copy()  # what the teacher reads: V(vsense) = V(out) + v_inj + the sensor's noise
    sensed[n + NOISE] = 1.0
    if inject is not None:
        amp, freq = inject
        w0 = 2 * math.pi * freq
        rows[OC, OS], rows[OS, OC] = -w0, w0  # c' = -w s, s' = w c: s(t) = sin(w t) from (c, s) = (1, 0)
        sensed[OS] = amp
    fb = sensed / vmax
    if teacher_adc:
        fb = np.eye(w)[n + HELD_FB]
    rows[Q1, [Q1, Q2]] = [-1 / (c.R1 * c.C1), 1 / (c.R1 * c.C1)]
    rows[Q3] = (fb - inv - np.eye(w)[Q3]) / (c.R3 * c.C3)
    rows[Q2] = -((fb - inv) / c.R2 + c.C3 * rows[Q3] + c.C1 * rows[Q1]) / c.C2
    oi = np.eye(w)[OI] if clamped_oi is None else clamped_oi * np.eye(w)[n + ONE]
    drive = c.opamp_gm * (np.eye(w)[n + REF] / vmax - inv) - oi / c.opamp_r
    if clamped_oi is None:
        rows[OI] = drive / c.opamp_c
    events = np.vstack([np.eye(w)[IL], np.eye(w)[OI], drive])
    # A state frozen in this mode (iL in dcm, iLo under a current-source load, oi at a clamp) is held at
    # its value by the kernel; zero its column too, so that each mode's A stays diagonalisable.
    frozen = ([IL] if plant == 2 else []) + ([ILO] if load_step else []) + ([OI] if clamped_oi is not None else [])
    rows[:, frozen] = 0.0
    events[:, frozen] = 0.0
    if clamped_oi is not None:
        events[EV_OI, n + ONE] = clamped_oi
    return rows[:, :n], rows[:, n:], events[:, :n], events[:, n:]


def modal_model(c: GymCircuit, ro: float, Lo: float, vmax: float, load_step: bool,
                inject: tuple[float, float] | None = None, teacher_adc: bool = False) -> ModalModel:
    """Every mode's matrices and eigen decomposition for one load (computed once per operating point)."""
    mats = [mode_equations(c, ro, Lo, vmax, load_step, plant, teacher, inject, teacher_adc)
            for plant in range(len(PLANT_MODES)) for teacher in range(len(TEACHER_MODES))]
    A, B, ev_x, ev_u = (np.array(v) for v in zip(*mats))
    lam, V = np.linalg.eig(A)  # all modes at once
    V = V.astype(complex)
    cond = np.linalg.cond(V)
    if not np.all(np.isfinite(cond)) or cond.max() > 1e12:
        k = int(np.nanargmax(np.where(np.isfinite(cond), cond, np.inf)))
        raise ArithmeticError(f"mode {PLANT_MODES[k // len(TEACHER_MODES)]}/{TEACHER_MODES[k % len(TEACHER_MODES)]} "
                              f"is not diagonalisable (cond {cond[k]:.1e}) at ro={ro}, Lo={Lo}")
    Vi = np.linalg.inv(V)
    ev_z = ev_x @ V
    mag = np.abs(lam)
    with np.errstate(divide="ignore"):
        cap = np.where(mag > 0, 2.0 / mag, np.inf)
    bounded = np.all(lam.real <= 1e-12 * np.maximum(mag, 1.0), axis=1)
    return ModalModel(lam=lam.astype(complex), V=V, Vi=Vi, ViB=Vi @ B, ev_z=ev_z, ev_u=ev_u, A=A, B=B, ev_x=ev_x,
                      ev_abs=np.abs(ev_z), cap=cap, bounded=bounded)


@dataclass
class StartState:
    """The DC operating point SPICE starts the transient from, and the op-amp clamp levels around it."""

    x: np.ndarray
    plant: int
    teacher: int
    clamp_hi: float
    clamp_lo: float


def operating_point(c: GymCircuit, vin: float, ro: float, vmax: float, load_step: bool, iload0: float) -> StartState:
    """Every hold at 0, so duty 0 and the switch off. What remains: the off switch's leak into an R-L load
    (Vout a few mV), or the current-source load pulling its current through the diode (Vout < 0); either
    way fb != ref = 0 and the op-amp sits on a clamp diode, at the diode's voltage for the current it takes, with
    the compensator's capacitors charged to what its clamped output puts across them."""
    x = np.zeros(N_STATES)
    if load_step:
        vd0, rd = diode_line(c)
        x[IL] = iload0
        vout = -(vd0 + rd * iload0) - c.RL * iload0
        plant = 1
    else:
        vout = vin * ro / (c.roff + ro)
        plant = 2
    x[VC] = vout
    fb = vout / vmax  # (an injection is a sine from 0: nothing at the operating point)
    current = c.opamp_gm * abs(fb)  # what the clamp diode takes (inv = fb, ref = 0)
    drop = c.clamp_n * THERMAL_VOLTAGE * math.log1p(max(current, 1e-9) / c.clamp_is)
    hi, lo = c.clamp_hi + drop, c.clamp_lo - drop
    teacher = 4 if fb > 0 else 3
    x[OI] = lo if teacher == 4 else hi
    # The compensator's capacitors at DC carry no current: inv = t3 = fb and t1 = nnpwm (the clamped op-amp output),
    # so CT1 and CT2 hold nnpwm - fb (1 V less fb behind the current-source load's negative Vout, not 0).
    x[Q1] = x[Q2] = (1.0 if teacher == 3 else 0.0) - fb
    return StartState(x, plant, teacher, hi, lo)
