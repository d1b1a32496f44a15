"""The one small interface every episode engine implements (SPICE through a Backend, the fast simulator)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from ..contract import Episode


class Engine(ABC):
    """Runs a batch of episodes of one gym in one scenario; each entry is an Episode or the error it raised."""

    name: str = ""
    fast: bool = False  # True: not a SPICE simulator (the trainer's SPICE check judges it)

    @abstractmethod
    def run(self, gym: str, actor, params: list, workdir: str | Path, *, scenario: str = "startup",
            parallel: int | None = None, timeout: float = 900.0, keep_waveforms: bool = False,
            max_step: float | None = None, nn_in_circuit: bool | None = None,
            nn_element: str | None = None, settings: dict | list[dict] | None = None) -> list[Episode | Exception]:
        """Episodes of ``gym`` with ``actor`` at each operating point of ``params`` (Episode.artefacts: files);
        ``settings``: the scenario's settings (one dict for all episodes, or one per episode)."""

    @abstractmethod
    def ensure_available(self) -> None:
        """Raise, saying how to install it, when this engine cannot run here."""

    def require_runnable(self, actor) -> None:
        """Raise before any work when this engine cannot run ``actor``."""
