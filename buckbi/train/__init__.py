"""Behaviour-imitation training (``python -m buckbi train``): schedule, loop, artefacts, plots."""
from .artefacts import COLUMNS, SEED_COLUMNS, RunDir
from .learners import BehaviourImitation, Learner, RecurrentActorError, bi_update
from .loop import TrainConfig, Trainer, TrainingStopped, train
from .schedule import DEFAULT_SCHEDULE, ScheduleError, gym_for_episode, parse_schedule

__all__ = ["BehaviourImitation", "Learner", "RecurrentActorError", "COLUMNS", "SEED_COLUMNS", "RunDir", "TrainConfig", "Trainer", "TrainingStopped", "bi_update", "train",
           "DEFAULT_SCHEDULE", "ScheduleError", "gym_for_episode", "parse_schedule"]
