"""One way every benchmark times a thing: warm-up runs first (compilation, caches, worker start-up not counted), then
the median of ``repeat`` runs, with every sample printed beside it."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Timing:
    median: float
    samples: list[float]

    def text(self, unit: str = "s", scale: float = 1.0) -> str:
        return (f"median {self.median * scale:.3g} {unit} over {len(self.samples)} "
                f"({', '.join(f'{s * scale:.3g}' for s in self.samples)})")


def timed(run: Callable[[], object], repeat: int = 3, warmup: int = 1) -> Timing:
    """Median wall time of ``run()`` over ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t)
    return Timing(statistics.median(samples), samples)
