"""LTspice backend, used when a user has LTspice (Windows, or wine on Linux/macOS)."""
from __future__ import annotations

from spicelib.simulators.ltspice_simulator import LTspice

from .backend import Backend


class LTspiceBackend(Backend):
    """LTspice in batch mode (``-b``) through spicelib's LTspice class."""

    name = "ltspice"
    raw_dialect = "ltspice"
    netlist_dialect = "ltspice"

    def __init__(self, executable: str | None = None):
        self.executable = executable
        attrs = {"spice_exe": [executable]} if executable else {}
        self._cls = type("LTspice_buckbi", (LTspice,), attrs)

    def spicelib_simulator(self) -> type[LTspice]:
        return self._cls

    def install_hint(self) -> str:
        return ("Install LTspice from analog.com (on Linux under wine), or use the embedded default "
                "with --simulator ngspice; for a PyTorch network, --simulator pwl (the fast exact simulator) "
                "needs neither.")
