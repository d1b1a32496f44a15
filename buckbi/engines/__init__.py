"""Episode engines beside each other: SPICE (ngspice or LTspice, through a Backend) and the fast simulator.

``engine_for`` is the one place a simulator choice (``--simulator``, ``$BUCKBI_SIMULATOR``, a Backend, an Engine)
becomes an engine.
"""
from __future__ import annotations

from ..sim import FAST, Backend, get_simulator, simulator_name
from .base import Engine
from .fast import FastEngine
from .spice import SpiceEngine

__all__ = ["Engine", "FastEngine", "SpiceEngine", "engine_for", "is_fast"]


def engine_for(simulator: "str | Backend | Engine | None" = None) -> Engine:
    """The engine a choice stands for: "pwl" the fast simulator, else the SPICE backend it names."""
    if isinstance(simulator, Engine):
        return simulator
    if is_fast(simulator):
        return FastEngine()
    return SpiceEngine(get_simulator(simulator))


def is_fast(simulator: "str | Backend | Engine | None") -> bool:
    """True when the choice is the fast simulator (no SPICE backend behind it)."""
    if isinstance(simulator, Engine):
        return simulator.fast
    return not isinstance(simulator, Backend) and simulator_name(simulator) == FAST
