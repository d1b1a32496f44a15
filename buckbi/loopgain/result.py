"""A loop-gain measurement's result, whichever method made it (injection or POP + AC)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..converters.buck.spec import EpisodeParams


@dataclass
class FraResult:
    """Long table: one row per point, controller and frequency (gain, phase, the components, any error)."""

    table: pd.DataFrame
    points: list[EpisodeParams]
