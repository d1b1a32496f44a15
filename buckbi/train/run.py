"""``train(config)``: one run of the recipe in ``config.workdir`` (``loop.Trainer``), or, with the recipe's
``restarts``, its runs side by side and the best kept network picked (``restarts.train_restarts``)."""
from __future__ import annotations

import pandas as pd

from .config import TrainConfig
from .loop import Trainer
from .recipes import get_recipe
from .restarts import train_restarts


def train(config: TrainConfig) -> pd.DataFrame:
    """Run (or resume) training in ``config.workdir``; returns the log (with restarts: its runs', joined)."""
    if get_recipe(config.recipe).restarts > 1:
        return train_restarts(config)
    return Trainer(config).run()
