"""A training run's settings (light: the command line reads its defaults without importing PyTorch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .schedule import DEFAULT_SCHEDULE

DEFAULT_SPICE_CHECK = 100


@dataclass
class TrainConfig:
    """Everything a training run needs; the defaults are the seed notebook's."""

    workdir: Path = Path("gym")
    schedule: str = DEFAULT_SCHEDULE
    gym: str | None = None  # overrides the schedule for every episode
    episodes: int | None = None  # how many to run now; None: to the end of the schedule
    steps: int = 2048
    epochs: int = 200
    lr: float = 1e-4
    seed: int | None = None
    jobs: int = 1
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
    # buckbi.pwl.agreement.tolerance_for(spice_max_step) stops training. None: 100 on pwl; 0: off.
    spice_check_every: int | None = None
    spice_simulator: str = "ngspice"
    spice_max_step: float | None = None  # the check's SPICE step; None: T/400 (default-step ngspice is no judge)
    init: Path | None = None  # a new run starts from this network (any form buckbi loads) instead of a seeded one
    arch: str | None = None  # --arch of ``init`` when it is a bare state dict
    trust_pickle: bool = False  # ``init`` may be a pickled module or TorchScript file

    @property
    def check_every(self) -> int:
        from ..engines import is_fast
        if not is_fast(self.simulator):
            return 0
        return DEFAULT_SPICE_CHECK if self.spice_check_every is None else self.spice_check_every
