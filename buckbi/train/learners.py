"""Learners behind one small protocol: episodes in, the actor updated, a loss out. Behaviour imitation first.

A learner for recurrent actors (backpropagation through an episode's rows in order) or for RL plugs in through
``TrainConfig.learner`` without touching the loop.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ..contract import Episode
from ..export.graph import ExportError, has_state, lower


@runtime_checkable
class Learner(Protocol):
    """What the training loop needs of a learner; its state is saved in the checkpoint beside the actor."""

    name: str

    def update(self, episodes: list[Episode]) -> float:
        """Fit the actor on these episodes (one batch); returns the loss."""

    def state_dict(self) -> dict:
        """Everything needed to resume (e.g. the optimizer's moments)."""

    def load_state_dict(self, state: dict) -> None:
        ...


class RecurrentActorError(ValueError):
    """Behaviour imitation fits rows as independent samples: a recurrent actor needs a sequence learner."""


def bi_update(actor: nn.Module, optimizer: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray,
              epochs: int) -> float:
    """The seed's update: ``epochs`` full-batch Adam steps on MSE; returns the last epoch's loss."""
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
    loss_fn = nn.MSELoss()
    actor.train()
    loss = torch.tensor(float("nan"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small on ~2k rows: more threads only add overhead (2.1x slower on 2)
    try:
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = loss_fn(actor(xt), yt)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    actor.eval()
    return float(loss.item())


class BehaviourImitation:
    """The seed's learner: the teacher's duty (label) as the target, full-batch Adam on MSE over the batch's rows."""

    name = "bi"

    def __init__(self, actor: nn.Module, lr: float = 1e-4, epochs: int = 200):
        try:
            recurrent = has_state(lower(actor)[0])
        except ExportError:
            recurrent = False  # the exporter says what is wrong with it when it runs
        if recurrent:
            raise RecurrentActorError(
                "behaviour imitation feeds the episode's rows to the actor as independent samples (hidden state 0), "
                "which is not what a recurrent actor computes in the circuit (its rows are a sequence); train a "
                "feed-forward actor, or plug a sequence learner in through TrainConfig.learner")
        self.actor, self.lr, self.epochs = actor, lr, epochs
        self.optimizer = torch.optim.Adam(actor.parameters(), lr=lr)

    def update(self, episodes: list[Episode]) -> float:
        x = np.concatenate([e.x for e in episodes])
        y = np.concatenate([e.y for e in episodes])
        return bi_update(self.actor, self.optimizer, x, y, self.epochs)

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr  # --lr of this invocation wins over the saved one


def behaviour_imitation(actor: nn.Module, config) -> BehaviourImitation:
    """The default ``TrainConfig.learner`` factory."""
    return BehaviourImitation(actor, lr=config.lr, epochs=config.epochs)
