"""The sign-off recipe's learner: imitation on a replay buffer in minibatches, plus a loop-gain term that matches the
network's small-signal loop gain T(f) to the teacher's at the batch's own operating points (POP + AC)."""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..contract import Episode, IOContract
from ..converters.buck.spec import ACCUMULATOR, DUTY_CHANGE, DUTY_HISTORY, IO, EpisodeParams, accumulator_gain
from .learners import BehaviourImitation
from .recipes import Recipe
from .targets import mismatch, teacher_target

log = logging.getLogger("buckbi.train")
RAIL_LOW, RAIL_HIGH = 1e-3, 0.99  # a label outside these: the teacher at a rail


def least_phase_margin(T: torch.Tensor, f_Hz: np.ndarray) -> torch.Tensor | None:
    """The phase margin (radians) of ``T`` on the grid ``f_Hz`` as python-control reports it, differentiable: at each
    unity-gain crossing 180 degrees + the phase of T, log|T| and the phase interpolated linearly in log f between the
    grid's two points either side (the phase along its shorter way round), and of the crossings the one whose margin is
    nearest 0 (``stability_margins``: where a resonance makes |T| cross 1 three times, a crossing whose phase has
    wrapped lies far from -1 and does not bind); None where |T| never crosses 1 in the band."""
    mag = torch.log(T.abs())
    pm = torch.angle(-T)  # 180 degrees + the phase of T, in (-pi, pi]
    sign = (mag.detach() >= 0).to(torch.int8)
    idx = torch.nonzero(sign[:-1] != sign[1:]).flatten()
    if not len(idx):
        return None
    alpha = mag[idx] / (mag[idx] - mag[idx + 1])
    step = torch.remainder(pm[idx + 1] - pm[idx] + np.pi, 2 * np.pi) - np.pi
    at = torch.remainder(pm[idx] + alpha * step + np.pi, 2 * np.pi) - np.pi
    return at[torch.argmin(at.detach().abs())]


class LoopGainTarget:
    """The teacher's T(f) at one operating point (its gain raised where its phase margin is short of
    ``target_margin_deg``: ``raised_gain``) and the network's, differentiable, at the teacher's orbit."""

    def __init__(self, actor: nn.Module, params: EpisodeParams, f_Hz: np.ndarray, crossover_boost: float = 0.0,
                 stability_share: float = 0.5, target_margin_deg: float = 0.0):
        from ..loopgain.pop import FixedOrbitLoopGain, orbit_at_teacher
        clean, teacher, self.gain, self.T_teacher, self.weights = teacher_target(params, f_Hz, crossover_boost,
                                                                                 target_margin_deg)
        self.f, self.params = f_Hz, clean
        self.fixed = FixedOrbitLoopGain(actor, clean, orbit_at_teacher(actor, clean, teacher.orbit))
        self.keep: list[int] | None = None  # the loop's states, found by the first excess_pole (the hinge is a setting)
        # the network's critical pole may lie this far out: the teacher's, plus a share of its distance to the unit circle
        self.radius = teacher.critical_pole + stability_share * (1.0 - teacher.critical_pole)

    def loss(self, actor: nn.Module) -> torch.Tensor:
        """The mismatch of the network's T(f) at this point, weighted towards the teacher's crossover."""
        return mismatch(self.fixed.T(actor, self.f), self.T_teacher, self.weights)

    def margin_shortfall(self, actor: nn.Module, floor_deg: float) -> torch.Tensor:
        """(floor - the network's least phase margin)^2 in radians^2 where the margin is short of ``floor_deg``,
        else 0 (also where its |T| does not cross 1 in the band)."""
        pm = least_phase_margin(self.fixed.T(actor, self.f), self.f)
        if pm is None:
            return torch.zeros((), dtype=torch.float64)
        return torch.relu(np.radians(floor_deg) - pm) ** 2

    def excess_pole(self, actor: nn.Module) -> torch.Tensor:
        """How far the largest |eigenvalue| of the network's linearised period map at this orbit lies beyond
        ``radius`` (0 inside): a hinge that pushes a loop about to oscillate back towards the teacher's damping."""
        from ..loopgain.pop import _loop_states
        M = self.fixed.period_map(self.fixed.sample_matrix(actor))
        if self.keep is None:
            self.keep = _loop_states(self.fixed.loop, M.detach().real.numpy())
        M = M[self.keep][:, self.keep]
        return torch.relu(torch.linalg.eigvals(M).abs().max() - self.radius)


def labelled(episode: Episode, label: str = "clock") -> Episode:
    """The episode as the fit takes it: with ``label = "applied"`` each row's label is the teacher's command as the PWM
    hold took it after the row (the next row's tduty: in gym 1 its NNin11, in gym 2 what the teacher would have
    applied), its last row dropped; otherwise as it is."""
    if label != "applied" or len(episode.y) < 2:
        return episode
    if episode.gym == "gym2":
        column = IOContract.column(IO.teacher_duty)
        if episode.rows is None or column not in episode.rows:
            raise ValueError(f"label 'applied' needs the network-driven episode's {column} (the teacher's command at "
                             "the PWM hold): run it with this version's gyms")
        after = episode.rows[column].to_numpy()[1:]
    else:
        after = episode.x[1:, DUTY_HISTORY[0]]
    return replace(episode, x=episode.x[:-1], y=after.astype(episode.y.dtype), pred=episode.pred[:-1])


def rail_rows_kept(episode: Episode, rails: str = "keep") -> np.ndarray:
    """The rows of an episode the fit takes: all of them, but with ``rails = "drop"`` not those of a network-driven
    episode (gym 2) whose teacher is at a rail (duty < 0.001 or > 0.99)."""
    keep = np.ones(len(episode.y), dtype=bool)
    if rails == "drop" and episode.gym == "gym2":
        keep &= (episode.y > RAIL_LOW) & (episode.y < RAIL_HIGH)
    return keep


def relative_weights(x: torch.Tensor, power: float) -> torch.Tensor | None:
    """Per-row weights (vin / vref)^power from the rows' inputs NNin16 (vin / vmax) and NNin17 (vref / vmax), mean 1;
    None where ``power`` is 0."""
    if not power:
        return None
    duty = (x[:, 16] / x[:, 15].clamp_min(1e-6)).clamp(0.02, 1.0)
    w = duty.pow(-power)
    return (w / w.mean()).reshape(-1, 1)


def fit_loss(actor: nn.Module, x: torch.Tensor, y: torch.Tensor,
             kind: str = "mse", weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The imitation term on rows (x, label y) and the rows' MSE (what the log reports either way). "bce": the
    Bernoulli cross-entropy of the duty less the label's own entropy (0 at a perfect fit, as the MSE), on the logit
    where the network ends in a sigmoid (its gradient there: duty - label), else on the duty kept inside (0, 1)."""
    if kind == "mse":
        out = actor(x)
        mse = nn.functional.mse_loss(out, y)
        return (mse if weight is None else (weight * (out - y) ** 2).mean()), mse
    y = y.clamp(0.0, 1.0)
    if isinstance(actor, nn.Sequential) and isinstance(actor[-1], nn.Sigmoid):
        logit = actor[:-1](x)
        out = torch.sigmoid(logit)
        ce = nn.functional.binary_cross_entropy_with_logits(logit, y, weight=weight)
    else:
        out = actor(x)
        ce = nn.functional.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), y, weight=weight)
    h = -(torch.special.xlogy(y, y) + torch.special.xlogy(1 - y, 1 - y))  # 0 log 0 = 0: labels at a rail
    return ce - (h if weight is None else weight * h).mean(), nn.functional.mse_loss(out.detach(), y)


def noisy_history(x: torch.Tensor, rms: float, generator: torch.Generator) -> torch.Tensor:
    """Rows ``x`` with N(0, rms^2) added to each applied-duty input (NNin11..15) and NNin18 = NNin11 - NNin12 kept."""
    if not rms:
        return x
    x = x.clone()
    cols = list(DUTY_HISTORY)
    x[:, cols] += rms * torch.randn((x.shape[0], len(cols)), generator=generator, dtype=x.dtype)
    x[:, DUTY_CHANGE] = x[:, cols[0]] - x[:, cols[1]]
    return x


def shifted_accumulator(x: torch.Tensor, y: torch.Tensor, gain: torch.Tensor, rms: float,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and labels with the teacher's integrator shifted by N(0, rms^2) of duty: NNin19 by shift / ``gain`` (the
    teacher's duty per unit of NNin19, per row), the label by the shift, clipped to 0..1; rows at a rail unshifted."""
    if not rms:
        return x, y
    shift = rms * torch.randn(y.shape, generator=generator, dtype=y.dtype)
    shift = torch.where((y > RAIL_LOW) & (y < RAIL_HIGH), shift, torch.zeros_like(shift))
    x = x.clone()
    x[:, ACCUMULATOR] += shift.reshape(-1) / gain
    return x, (y + shift).clamp(0.0, 1.0)


def input_steps(x: torch.Tensor) -> torch.Tensor:
    """Per-input step scales of the first layer: the inputs' median spread over each input's own (standard
    deviation, floored at 1e-3 of the median), so that a weight moves in units of its input's spread."""
    spread = x.double().std(dim=0)
    typical = spread.median().clamp_min(1e-12)
    return (typical / spread.clamp_min(1e-3 * typical)).to(torch.float32)


def first_linear(actor: nn.Module, n_inputs: int) -> nn.Linear:
    """The layer that reads the network's inputs (the precondition acts on its weight)."""
    for m in actor.modules():
        if isinstance(m, nn.Linear) and m.in_features == n_inputs:
            return m
    raise ValueError(f"precondition = 'inputs' needs a network whose first layer is an nn.Linear of {n_inputs} "
                     "inputs; train this one with --set precondition=off")


def loop_gain_loss(actor: nn.Module, targets: list[LoopGainTarget]) -> torch.Tensor:
    """The loop-gain term over several operating points (0 where there are none)."""
    if not targets:
        return torch.zeros((), dtype=torch.float64)
    return torch.stack([t.loss(actor) for t in targets]).mean()


def margin_loss(actor: nn.Module, targets: list[LoopGainTarget], floor_deg: float) -> torch.Tensor:
    """The phase-margin hinge over several operating points (0 where there are none)."""
    if not targets:
        return torch.zeros((), dtype=torch.float64)
    return torch.stack([t.margin_shortfall(actor, floor_deg) for t in targets]).mean()


def stability_loss(actor: nn.Module, targets: list[LoopGainTarget]) -> torch.Tensor:
    """The critical-pole hinge over several operating points (0 where there are none)."""
    if not targets:
        return torch.zeros((), dtype=torch.float64)
    return torch.stack([t.excess_pole(actor) for t in targets]).mean()


class SignoffImitation(BehaviourImitation):
    """Behaviour imitation on the last ``replay`` batches in minibatches, plus ``loop_gain_weight`` x the loop-gain
    term at ``loop_gain_points`` operating points of each batch. Its state (optimiser, buffer, generator) resumes."""

    name = "signoff"

    def __init__(self, actor: nn.Module, recipe: Recipe, lr: float, epochs: int, seed: int = 0):
        super().__init__(actor, lr=lr, epochs=epochs)
        self.recipe = recipe
        self.buffer: list[tuple[np.ndarray, ...]] = []  # per batch: rows, labels, |label change|
        self.generator = torch.Generator().manual_seed(seed)
        self.last_terms: dict[str, float] = {}
        self.updates = 0  # done so far: sets the learning rate of the recipe's decay
        self.fast: list[torch.Tensor] | None = None  # the optimiser's own weights where the actor is their average
        self.steps: torch.Tensor | None = None  # precondition "inputs": the first layer's per-input step scales
        self.scale_init = True  # precondition "inputs" also scales a fresh network's first layer (not an --init one)
        self.pool = None
        if recipe.loop_gain_weight and recipe.loop_gain_pool:
            from .pool import LoopGainPool
            self.pool = LoopGainPool(recipe.frequencies(), recipe.loop_gain_pool, recipe.loop_gain_crossover_boost,
                                     recipe.target_margin_deg)

    def targets(self, episodes: list[Episode]) -> list[LoopGainTarget]:
        """Loop-gain targets at ``loop_gain_points`` of the batch's points (where both have an orbit)."""
        from ..loopgain.pop import PopError
        r = self.recipe
        if not (r.loop_gain_weight and r.loop_gain_points and episodes):
            return []
        if self.pool is not None and not (r.stability_weight or r.margin_weight):
            return []  # the pool holds the term; the batch's targets only for the hinges
        order = torch.randperm(len(episodes), generator=self.generator).tolist()
        out = []
        for i in order:
            if len(out) == r.loop_gain_points:
                break
            try:
                target = LoopGainTarget(self.actor, episodes[i].params, r.frequencies(), r.loop_gain_crossover_boost,
                                        r.stability_share, r.target_margin_deg)
                if not torch.isfinite(target.loss(self.actor).detach()):
                    raise PopError("the network's T(f) at the teacher's orbit is not finite")
                out.append(target)
            except PopError as e:  # a point without an orbit (e.g. the teacher at its duty limit): another one
                log.debug("loop-gain term skips vin %.1f vref %.1f: %s", episodes[i].params.vin,
                          episodes[i].params.vref, e)
        return out

    def update(self, episodes: list[Episode]) -> float:
        r = self.recipe
        episodes = [labelled(e, r.label) for e in episodes]
        keep = [rail_rows_kept(e, r.dagger_rails) for e in episodes]
        self.buffer.append((np.concatenate([e.x[k] for e, k in zip(episodes, keep)]).astype(np.float32),
                            np.concatenate([e.y[k] for e, k in zip(episodes, keep)]).astype(np.float32),
                            np.concatenate([np.abs(np.diff(e.y, prepend=e.y[:1]))[k]
                                            for e, k in zip(episodes, keep)]).astype(np.float32),
                            np.concatenate([np.full(int(k.sum()), self._gain(e.params), np.float32)
                                            for e, k in zip(episodes, keep)])))
        self.buffer = self.buffer[-max(1, r.replay):]
        x = torch.from_numpy(np.concatenate([b[0] for b in self.buffer]))
        y = torch.from_numpy(np.concatenate([b[1] for b in self.buffer])).reshape(-1, 1)
        change = torch.from_numpy(np.concatenate([b[2] for b in self.buffer]))
        gain = torch.from_numpy(np.concatenate([b[3] if len(b) > 3 else np.full(len(b[1]), self._gain(None), np.float32)
                                                for b in self.buffer]))
        odds = 1.0 + r.transient_weight * change / max(float(change.mean()), 1e-12) if r.transient_weight else None
        first = self._precondition(x)
        average = self._swap_in_fast()
        targets = self.targets(episodes)
        if self.pool is not None:
            self.pool.add([e.params for e in episodes])
            self.pool.refresh(self.actor)
        lr = self.recipe.lr_at(self.updates) * self.lr / self.recipe.lr  # --lr scales the recipe's schedule
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        weight = r.loop_gain_weight_at(self.updates)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.actor.train()
        mse = lg = st = pmh = torch.zeros(())
        try:
            for _ in range(self.epochs):
                if not r.minibatch:
                    rows = slice(None)
                elif odds is None:
                    rows = torch.randint(len(x), (r.minibatch,), generator=self.generator)
                else:
                    rows = torch.multinomial(odds, r.minibatch, replacement=True, generator=self.generator)
                self.optimizer.zero_grad()
                xb, yb = shifted_accumulator(x[rows], y[rows], gain[rows], r.accumulator_shift, self.generator)
                xb = noisy_history(xb, r.history_noise, self.generator)
                fit, mse = fit_loss(self.actor, xb, yb, r.fit_loss, relative_weights(xb, r.relative_fit))
                lg = loop_gain_loss(self.actor, targets) if self.pool is None else self.pool.loss(self.actor)
                if self.pool is None and not torch.isfinite(lg):  # a point whose linearisation broke down under this step: drop it
                    targets = [t for t in targets if torch.isfinite(t.loss(self.actor).detach())]
                    lg = loop_gain_loss(self.actor, targets)
                total = fit + weight * lg.to(mse.dtype)
                if r.stability_weight:
                    st = stability_loss(self.actor, targets)
                    total = total + r.stability_weight * st.to(mse.dtype)
                if r.margin_weight:
                    pmh = margin_loss(self.actor, targets, r.margin_floor_deg)
                    total = total + r.margin_weight * pmh.to(mse.dtype)
                if not torch.isfinite(total):
                    continue  # never a step on a non-finite loss: the weights stay as they were
                total.backward()
                if self.pool is not None and not all(bool(torch.isfinite(q.grad).all())
                                                     for q in self.actor.parameters() if q.grad is not None):
                    continue  # nor on a non-finite gradient
                before = None if first is None else first.weight.detach().clone()
                self.optimizer.step()
                if first is not None:  # Adam's step on W = V x steps, taken on V (Adam ignores a gradient's scale)
                    with torch.no_grad():
                        first.weight.copy_(before + (first.weight - before) * self.steps)
        finally:
            torch.set_num_threads(threads)
            self.actor.eval()
        self._average(average)
        self.updates += 1
        self.last_terms = {"mse": float(mse.detach()), "loop_gain": float(lg.detach()), "stability": float(st.detach()),
                           "margin": float(pmh.detach()),
                           "loop_gain_points": len(targets) if self.pool is None else len(self.pool)}
        log.debug("signoff update: mse %.3e, loop-gain term %.3e, pole hinge %.3e, margin hinge %.3e at %d points",
                  *self.last_terms.values())
        return (self.last_terms["mse"] + weight * self.last_terms["loop_gain"]
                + r.stability_weight * self.last_terms["stability"] + r.margin_weight * self.last_terms["margin"])

    def _gain(self, params: EpisodeParams | None) -> float:
        """The teacher's duty per unit of NNin19 in an episode (None: at the recipe's converter's own values)."""
        if params is None:
            conv = self.recipe.conv
            return accumulator_gain(conv.teacher.g, conv.teacher.fz1, conv.teacher.fz2, conv.teacher.fp2, conv.fsw)
        return accumulator_gain(params.g, params.fz1, params.fz2, params.fp2, params.fsw)

    def _precondition(self, x: torch.Tensor) -> nn.Linear | None:
        """With precondition "inputs": the first layer, its step scales taken from the first batch; on that batch its
        weight columns are scaled by them too, so that a fresh network starts as one drawn for standardised inputs."""
        if self.recipe.precondition != "inputs":
            return None
        first = first_linear(self.actor, x.shape[1])
        if self.steps is None:
            self.steps = input_steps(x)
            if self.updates == 0 and self.scale_init:
                with torch.no_grad():
                    first.weight.mul_(self.steps)
        return first

    def _swap_in_fast(self) -> list[torch.Tensor] | None:
        """With averaging: put the optimiser's own weights in the actor for the fit; returns the average it held."""
        if not self.recipe.average:
            return None
        params = list(self.actor.parameters())
        average = [p.detach().clone() for p in params]
        if self.fast is not None:
            with torch.no_grad():
                for p, f in zip(params, self.fast):
                    p.copy_(f)
        return average

    def _average(self, average: list[torch.Tensor] | None) -> None:
        """With averaging: keep the fitted weights, put their running average in the actor (what runs and is saved)."""
        if average is None:
            return
        params = list(self.actor.parameters())
        first = self.fast is None
        self.fast = [p.detach().clone() for p in params]
        a = self.recipe.average
        with torch.no_grad():
            for p, m in zip(params, average):
                if not first:
                    p.mul_(1 - a).add_(m, alpha=a)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(), "updates": self.updates,
                "fast": self.fast, "steps": self.steps,
                "buffer": [tuple(torch.from_numpy(a.copy()) for a in item) for item in self.buffer],
                **({"pool": self.pool.state_dict()} if self.pool is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        if "optimizer" not in state or "buffer" not in state:
            raise ValueError("this checkpoint's learner state is not the signoff recipe's: resume it with the recipe "
                             "it was trained with, or start over with --fresh")
        super().load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state.get("updates", 0))
        self.fast = state.get("fast")
        self.steps = state.get("steps")
        self.buffer = [tuple(torch.as_tensor(a).numpy() for a in item) for item in state["buffer"]]
        if self.pool is not None:
            self.pool.load_state_dict(state.get("pool", []))


def signoff_learner(actor: nn.Module, config) -> SignoffImitation:
    """The ``TrainConfig.learner`` factory of recipes with ``learner = "signoff"``."""
    from .recipes import get_recipe
    recipe = get_recipe(config.recipe)
    learner = SignoffImitation(actor, recipe, lr=config.lr, epochs=config.epochs, seed=config.seed or 0)
    learner.scale_init = config.init is None
    return learner
