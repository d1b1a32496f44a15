"""The loop-gain term over a pool of operating points: the teacher's T(f) at the points of the last batches, the
network's from its Jacobians (``loopgain/rank_one.py``), every point at every optimiser step. The term at a batch's
own two points leaves the small-signal law free between visits of a region; the pool holds it where the data is."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..converters.buck.spec import EpisodeParams

log = logging.getLogger("buckbi.train")


@dataclass
class PoolPoint:
    """One operating point: the teacher's target and the network-free linearisation of the NN's loop there."""

    params: EpisodeParams
    duty: float  # the teacher's duty on its orbit (the network's accumulator is solved for it)
    T_teacher: torch.Tensor  # (F,) complex
    weights: torch.Tensor  # (F,)
    linear: object  # RankOneLoopGain

    @classmethod
    def at(cls, params: EpisodeParams, f_Hz: np.ndarray, crossover_boost: float = 0.0,
           target_margin_deg: float = 0.0) -> "PoolPoint":
        """Raises PopError where the teacher has no stable orbit with its duty inside 0..1 (the point is left out)."""
        from ..loopgain.pop import FixedOrbitLoopGain, orbit_at_teacher
        from ..loopgain.rank_one import ConstantDuty, RankOneLoopGain
        from .targets import teacher_target
        clean, teacher, _, T_teacher, weights = teacher_target(params, f_Hz, crossover_boost, target_margin_deg)
        stand_in = ConstantDuty(teacher.orbit.duty)  # the segments after the sample at the teacher's duty
        fixed = FixedOrbitLoopGain(stand_in, clean, orbit_at_teacher(stand_in, clean, teacher.orbit))
        return cls(clean, teacher.orbit.duty, T_teacher, weights, RankOneLoopGain.of(fixed, f_Hz))


class LoopGainPool:
    """The points of the last ``size`` batches (those where the teacher has an orbit), stacked for one evaluation."""

    def __init__(self, f_Hz: np.ndarray, size: int, crossover_boost: float = 0.0, target_margin_deg: float = 0.0):
        self.f, self.size = np.asarray(f_Hz, dtype=float), int(size)
        self.boost, self.target = crossover_boost, target_margin_deg
        self.batches: list[list[EpisodeParams]] = []  # what the state saves: the points are rebuilt from them
        self.points: list[list[PoolPoint]] = []
        self._stack: dict[str, torch.Tensor] | None = None

    def add(self, params: list[EpisodeParams]) -> None:
        """A batch's operating points in, the oldest batch out once there are ``size``."""
        from ..loopgain.pop import PopError
        built = []
        for p in params:
            try:
                built.append(PoolPoint.at(p, self.f, self.boost, self.target))
            except PopError as e:  # the teacher at a duty limit or oscillating there: no small-signal law to match
                log.debug("loop-gain pool leaves out vin %.1f vref %.1f: %s", p.vin, p.vref, e)
        self.batches.append(list(params))
        self.points.append(built)
        self.batches, self.points = self.batches[-self.size:], self.points[-self.size:]
        self._stack = None

    def __len__(self) -> int:
        return sum(len(b) for b in self.points)

    def refresh(self, actor: nn.Module) -> None:
        """Stack the points' terms and place each on the network at hand: its accumulator (NNin19) where it gives
        the teacher's duty with the orbit's other held inputs (once per update, as the batch's targets are built)."""
        from ..loopgain.rank_one import accumulators_for
        points = [p for batch in self.points for p in batch]
        if not points:
            self._stack = None
            return
        held = np.stack([p.linear.held for p in points])
        held[:, 18] = accumulators_for(actor, held, np.array([p.duty for p in points]))
        s = {name: torch.stack([getattr(p.linear, name) for p in points])
             for name in ("ax", "ay", "r", "gx", "gy", "un1", "g0n")}
        s["held"] = torch.from_numpy(held)
        s["T_teacher"] = torch.stack([p.T_teacher for p in points])
        s["weights"] = torch.stack([p.weights for p in points])
        self._stack = s
        self._period = points[0].linear.period

    def loss(self, actor: nn.Module) -> torch.Tensor:
        """The mean over the pool's points of the weighted loop-gain mismatch (points whose T is not finite under
        this step left out before the gradient is taken: a NaN never reaches the weights; 0 where none is left)."""
        s = self._stack
        if s is None:
            return torch.zeros((), dtype=torch.float64)
        per_point = self._per_point(actor, slice(None))
        finite = torch.isfinite(per_point.detach())
        if bool(finite.all()):
            return per_point.mean()
        if not bool(finite.any()):
            return torch.zeros((), dtype=torch.float64)
        return self._per_point(actor, torch.nonzero(finite).flatten()).mean()

    def _per_point(self, actor: nn.Module, rows) -> torch.Tensor:
        from ..loopgain.rank_one import jacobians, rank_one_T
        from .targets import mismatch
        s = {k: v[rows] for k, v in self._stack.items()}
        J = jacobians(actor, s["held"])
        T = rank_one_T(J, s["ax"], s["ay"], s["r"], s["gx"], s["gy"], s["un1"], s["g0n"], self._period)
        return mismatch(T, s["T_teacher"], s["weights"], dim=-1)

    def state_dict(self) -> list[list[dict]]:
        return [[asdict(p) for p in batch] for batch in self.batches]

    def load_state_dict(self, state: list[list[dict]]) -> None:
        self.batches, self.points = [], []
        for batch in state:
            self.add([EpisodeParams(**p) for p in batch])
