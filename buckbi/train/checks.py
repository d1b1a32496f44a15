"""Checks the loop runs beside training, as hooks: the SPICE check of fast-simulator episodes."""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..contract import Episode
from ..pwl.agreement import check_step, deviation, tolerance_for, violations

log = logging.getLogger("buckbi.train")


@dataclass
class CheckResult:
    """What a check measured for one episode, and what it found beyond its tolerance (empty: fine)."""

    deviations: dict[str, float]
    violations: list[str]


class SpiceCheck:
    """Every ``every``-th fast episode again in SPICE (same actor and point), at a converged step (T/400)."""

    def __init__(self, every: int, runner: Callable[..., list], simulator: str = "ngspice",
                 max_step: float | None = None, timeout: float = 900.0):
        self.every, self.runner, self.simulator = every, runner, simulator
        self.max_step, self.timeout = max_step, timeout

    def due(self, episode: int) -> bool:
        return bool(self.every) and episode % self.every == 0

    def __call__(self, gym: str, actor, batch: list[int], params: list, results: list,
                 workdir: Path, only: set[int] | None = None, **scenario) -> dict[int, CheckResult]:
        """Check the due episodes of ``batch`` (or those in ``only``, chosen by the caller)."""
        todo = [(ep, p, r) for ep, p, r in zip(batch, params, results)
                if (ep in only if only is not None else self.due(ep)) and isinstance(r, Episode)]
        if not todo:
            return {}
        max_step = self.max_step or check_step(todo[0][1].fsw)
        scratch = Path(workdir) / "spice-check"
        if "settings" in scenario:  # the settings of the episodes checked
            keep = {ep for ep, _, _ in todo}
            scenario = scenario | {"settings": [st for ep, st in zip(batch, scenario["settings"]) if ep in keep]}
        spice = self.runner(gym, actor, [p for _, p, _ in todo], scratch, self.simulator, parallel=len(todo),
                            timeout=self.timeout, max_step=max_step, **scenario)
        shutil.rmtree(scratch, ignore_errors=True)
        out = {}
        for (ep, _, fast), ref in zip(todo, spice):
            if isinstance(ref, Exception):  # SPICE failing is not a disagreement: log it, go on
                log.warning("[Ep%d] SPICE check could not run: %s", ep, str(ref).splitlines()[0])
                continue
            dev = deviation(fast, ref)
            out[ep] = CheckResult(dev, violations(dev, tolerance_for(max_step, fast.params.fsw)))
            log.info("[Ep%d] SPICE check: %s", ep, ", ".join(f"{k} {v:.2e}" for k, v in dev.items()))
        return out
