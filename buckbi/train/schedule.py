"""Training schedules: which gym each episode number runs in (``gym1:300,gym2:200``)."""
from __future__ import annotations

from ..converters.buck.spec import GYMS

DEFAULT_SCHEDULE = "gym1:300,gym2:200"  # the seed notebook's train_loop(.., gym1) then train_loop(.., gym2)
TRAINING_GYMS = ("gym1", "gym2")  # gyms that produce a teacher label


class ScheduleError(ValueError):
    """A schedule string cannot be parsed."""


def parse_schedule(text: str) -> list[tuple[str, int]]:
    """``"gym1:300,gym2:200"`` -> ``[("gym1", 300), ("gym2", 200)]``."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        gym, sep, count = part.partition(":")
        if not sep or gym not in TRAINING_GYMS or not count.strip().isdigit() or int(count) < 1:
            raise ScheduleError(f"bad schedule entry {part!r} in {text!r}: write GYM:EPISODES with GYM one of "
                                f"{', '.join(TRAINING_GYMS)} and EPISODES >= 1, e.g. {DEFAULT_SCHEDULE}")
        stages.append((gym, int(count)))
    if not stages:
        raise ScheduleError(f"empty schedule {text!r}; e.g. {DEFAULT_SCHEDULE}")
    return stages


def schedule_length(stages: list[tuple[str, int]]) -> int:
    return sum(n for _, n in stages)


def gym_for_episode(stages: list[tuple[str, int]], episode: int) -> str:
    """The gym of 1-based ``episode``; past the end the last stage's gym goes on."""
    end = 0
    for gym, count in stages:
        end += count
        if episode <= end:
            return gym
    return stages[-1][0]


assert set(TRAINING_GYMS) <= set(GYMS)
