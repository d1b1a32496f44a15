"""The network's loop gain at fixed orbits from its Jacobian alone. The period's map G(s) = rest(s) @ E depends on the
network only through one row of the sampling event E (the new output, J @ the held inputs' rows), so G is the network-
free G0 plus a rank-one term and T(f) follows from J by Sherman-Morrison: two solves per frequency once per point,
then a few 19-vector products per step. ``FixedOrbitLoopGain.T`` is the same quantity, plainly (tests hold the two
equal, values and gradients)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .pop import FixedOrbitLoopGain


class ConstantDuty(nn.Module):
    """A stand-in network that always commands ``duty``: it places the NN's loop on the teacher's orbit with every
    segment after the sample at the teacher's duty, whatever network is trained later (its Jacobian is 0)."""

    def __init__(self, duty: float):
        super().__init__()
        self.register_buffer("duty", torch.tensor(float(duty), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.duty.to(x.dtype) + 0.0 * x[:, :1]


@dataclass
class RankOneLoopGain:
    """T(f) of the NN's loop at one fixed orbit as a function of the network's Jacobian J at ``held`` (19 inputs)."""

    f_Hz: np.ndarray
    held: np.ndarray  # the held inputs at the orbit's sample (NNin19 set by the caller for the network at hand)
    ax: torch.Tensor  # (F, 19): new @ x0, x0 = A0^-1 b0 (the orbit's response without the network's row)
    ay: torch.Tensor  # (F, 19): new @ y0, y0 = A0^-1 u (its response to the network's row)
    r: torch.Tensor  # (19,): the held inputs' response to the injection
    gx: torch.Tensor  # (F,): the V(out) integral's row on x0
    gy: torch.Tensor  # (F,): ... on y0
    un1: torch.Tensor  # (F,): the V(out) integral's direct response to the network's row
    g0n: torch.Tensor  # (F,): ... to the injection
    period: float

    @classmethod
    def of(cls, fixed: FixedOrbitLoopGain, f_Hz) -> "RankOneLoopGain":
        """Precompute from a fixed orbit (its network's row in the sampling event replaced by J at each call)."""
        f = np.asarray(f_Hz, dtype=float)
        n, i_out = fixed.loop.n, fixed.loop.i_out
        R = fixed.rest(2j * math.pi * f)  # (F, n + 2, n + 2)
        base = fixed.base.clone()
        base[i_out, :n + 1] = 0.0  # the network's row: J @ new (states) and J @ r_held (injection)
        G0 = R @ base
        u = R[:, :, i_out]
        A0 = torch.eye(n, dtype=torch.complex128) - G0[:, :n, :n]
        sol = torch.linalg.solve(A0, torch.stack([G0[:, :n, n], u[:, :n]], dim=-1))
        x0, y0 = sol[..., 0], sol[..., 1]
        new = fixed.new.to(torch.complex128)  # (19, n)
        g = G0[:, n + 1, :n]
        return cls(f_Hz=f, held=fixed.held.copy(), ax=x0 @ new.T, ay=y0 @ new.T, r=fixed.r_held.to(torch.float64),
                   gx=(g * x0).sum(-1), gy=(g * y0).sum(-1), un1=u[:, n + 1], g0n=G0[:, n + 1, n],
                   period=fixed.loop.per)

    def T(self, J: torch.Tensor) -> torch.Tensor:
        """T at every frequency (complex, differentiable in J: d output / d inputs at ``held``, 19 values)."""
        return rank_one_T(J[None, :], self.ax[None], self.ay[None], self.r[None], self.gx[None], self.gy[None],
                          self.un1[None], self.g0n[None], self.period)[0]


def rank_one_T(J: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, r: torch.Tensor, gx: torch.Tensor,
               gy: torch.Tensor, un1: torch.Tensor, g0n: torch.Tensor, period: float) -> torch.Tensor:
    """T (P, F) at P points at once from their Jacobians J (P, 19) and precomputed terms stacked along P."""
    Jr = J.to(torch.float64)
    Jc = Jr.to(torch.complex128)
    alpha = torch.einsum("pfj,pj->pf", ax, Jc)  # J @ new @ x0
    beta = torch.einsum("pfj,pj->pf", ay, Jc)  # J @ new @ y0
    c = (r * Jr).sum(-1, keepdim=True).to(torch.complex128)  # the network's direct response to the injection
    k = (c + alpha) / (1.0 - beta)  # Sherman-Morrison: the network row's share of the periodic response
    vout = (gx + gy * k + un1 * (alpha + beta * k + c) + g0n) / period
    return -vout / (vout + 1.0)


def jacobians(actor: nn.Module, held: np.ndarray | torch.Tensor) -> torch.Tensor:
    """d output / d inputs of ``actor`` at each row of ``held`` (P, 19), differentiable in its parameters (float64)."""
    dtype = next(actor.parameters()).dtype
    x = torch.as_tensor(held, dtype=dtype).clone().requires_grad_(True)
    (J,) = torch.autograd.grad(actor(x)[:, 0].sum(), x, create_graph=True)
    return J.to(torch.float64)


def accumulators_for(actor: nn.Module, held: np.ndarray, duty: np.ndarray, span: float = 40.0, steps: int = 161,
                     refine: int = 30) -> np.ndarray:
    """NNin19 at which ``actor`` gives each row's ``duty`` with the row's other inputs (P, 19) as they are: of the
    crossings on a grid over +-``span`` the one nearest 0 (as ``pop._accumulator_for`` picks it), refined by
    ``refine`` bisection-secant (Illinois) steps inside its grid interval; the grid point nearest where none."""
    grid = np.linspace(-span, span, steps)
    held = np.asarray(held, dtype=float)
    P = len(held)
    dtype = next(actor.parameters()).dtype

    def miss(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor(torch.as_tensor(rows.reshape(-1, 19), dtype=dtype))[:, 0].double().numpy()

    rows = np.repeat(held[:, None, :], steps, axis=1)
    rows[:, :, 18] = grid
    outs = miss(rows).reshape(P, steps) - np.asarray(duty, dtype=float)[:, None]
    out, lo, hi, flo, fhi = np.empty(P), np.zeros(P), np.zeros(P), np.zeros(P), np.zeros(P)
    bracketed = np.zeros(P, dtype=bool)
    for p in range(P):
        o = outs[p]
        sign = np.flatnonzero(np.sign(o[:-1]) * np.sign(o[1:]) < 0)
        if not len(sign):
            out[p] = grid[np.argmin(np.abs(o))]
            continue
        k = sign[np.argmin(np.abs(grid[sign]))]
        bracketed[p] = True
        lo[p], hi[p], flo[p], fhi[p] = grid[k], grid[k + 1], o[k], o[k + 1]
    b = np.flatnonzero(bracketed)
    if len(b):
        lo, hi, flo, fhi = lo[b], hi[b], flo[b], fhi[b]
        target = np.asarray(duty, dtype=float)[b]
        side = np.zeros(len(b))
        x = lo - flo * (hi - lo) / (fhi - flo)
        for _ in range(refine):
            x = lo - flo * (hi - lo) / (fhi - flo)
            r = held[b].copy()
            r[:, 18] = x
            fx = miss(r) - target
            left = np.sign(fx) == np.sign(flo)
            lo, flo = np.where(left, x, lo), np.where(left, fx, flo)
            hi, fhi = np.where(left, hi, x), np.where(left, fhi, fx)
            fhi = np.where(left & (side == 1), fhi / 2, fhi)  # Illinois: halve the end that stayed twice
            flo = np.where(~left & (side == -1), flo / 2, flo)
            side = np.where(left, 1, -1)
        out[b] = x
    return out
