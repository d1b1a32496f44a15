"""A training run's settings (light: the command line reads its defaults without importing PyTorch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

DEFAULT_SPICE_CHECK = 100
RECIPE_FIELDS = ("schedule", "steps", "epochs", "lr", "jobs")  # None in a TrainConfig: the recipe's


@dataclass
class TrainConfig:
    """Everything a training run needs; the defaults are the seed notebook's (``recipe="seed"``)."""

    workdir: Path = Path("gym")
    recipe: Any = "seed"  # a name in buckbi.train.recipes.RECIPES or a Recipe: what episodes run, how they are fit
    converter: Any = None  # a converter file, a shipped name or a Converter (None: the reference buck)
    schedule: str | None = None  # None: the recipe's (the seed's gym1:300,gym2:200)
    gym: str | None = None  # overrides the schedule for every episode
    episodes: int | None = None  # how many to run now; None: to the end of the schedule
    steps: int | None = None  # None: the recipe's (2048)
    epochs: int | None = None  # None: the recipe's (seed: 200)
    lr: float | None = None  # None: the recipe's (seed: 1e-4)
    seed: int | None = None
    jobs: int | None = None  # episodes per update; None: the recipe's (seed: 1)
    simulator: Any = None  # a name, a Backend or None ($BUCKBI_SIMULATOR, else auto)
    start_episode: int | None = None
    fresh: bool = False
    max_failures: int = 5
    timeout: float = 900.0
    progress: bool = True
    # run_episodes' signature (None: buckbi.episodes.run.run_episodes); a Dask-backed runner can stand in
    runner: Callable[..., list] | None = field(default=None, repr=False)
    max_step: float | None = None  # SPICE's largest time step for every episode (None: T/20)
    # learner(actor, config) -> Learner; None: the seed's behaviour imitation (Adam, MSE)
    learner: Callable[..., Any] | None = field(default=None, repr=False)
    # On the fast simulator, every N-th episode also runs in SPICE (same actor and point); a deviation beyond
    # buckbi.pwl.agreement.tolerance_for(spice_max_step) stops training. None: the recipe's (seed 100) on pwl; 0: off.
    spice_check_every: int | None = None
    spice_simulator: str = "ngspice"
    spice_max_step: float | None = None  # the check's SPICE step; None: T/400 (default-step ngspice is no judge)
    init: Path | None = None  # a new run starts from this network (any form buckbi loads) instead of a seeded one
    arch: str | None = None  # --arch of ``init`` when it is a bare state dict
    trust_pickle: bool = False  # ``init`` may be a pickled module or TorchScript file

    def resolved(self) -> "TrainConfig":
        """A copy with every setting left None taken from the recipe."""
        from dataclasses import replace
        from .recipes import get_recipe
        r = get_recipe(self.recipe)
        return replace(self, **{k: getattr(r, k) for k in RECIPE_FIELDS if getattr(self, k) is None})

    @property
    def check_every(self) -> int:
        from ..engines import is_fast
        if not is_fast(self.simulator):
            return 0
        if self.spice_check_every is not None:
            return self.spice_check_every
        from .recipes import get_recipe
        return get_recipe(self.recipe).spice_check_every
