"""Behaviour-imitation training (``python -m buckbi train``): schedule, loop, artefacts, plots (loaded on use)."""
from ..util.lazy import lazy_attributes

__getattr__, __all__ = lazy_attributes(__name__, {
    ".artefacts": ("COLUMNS", "SEED_COLUMNS", "RunDir"),
    ".learners": ("BehaviourImitation", "Learner", "RecurrentActorError", "bi_update"),
    ".config": ("TrainConfig",),
    ".loop": ("Trainer", "TrainingStopped"),
    ".run": ("train",),
    ".schedule": ("DEFAULT_SCHEDULE", "ScheduleError", "gym_for_episode", "parse_schedule"),
})
