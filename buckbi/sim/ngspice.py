"""ngspice backend (the embedded default) through spicelib's NGspiceSimulator."""
from __future__ import annotations

import shutil
from pathlib import Path

from spicelib.simulators.ngspice_simulator import NGspiceSimulator

from .backend import Backend


class NgspiceBackend(Backend):
    """ngspice in batch mode; ``compatibility`` is passed as ``-D ngbehavior=...``."""

    name = "ngspice"
    raw_dialect = "ngspice"  # ngspice < 44 writes no header line spicelib could detect it by

    def __init__(self, executable: str | None = None, compatibility: str = "kiltpsa"):
        self.executable = executable or shutil.which("ngspice") or (NGspiceSimulator.spice_exe or [None])[0]
        self.compatibility = compatibility
        # In LTspice compatibility mode it reads what LTspice reads (checks the ltspice dialect here).
        self.netlist_dialect = "ltspice" if compatibility in ("lt", "ltps", "ltpsa", "lta") else "ngspice"
        # A private subclass, so that neither path nor mode leak into spicelib's shared class.
        self._cls = type(f"NGspice_{compatibility}", (NGspiceSimulator,), {
            "spice_exe": [self.executable] if self.executable else [],
            "process_name": "ngspice",
            "_compatibility_mode": compatibility,
        })

    def spicelib_simulator(self) -> type[NGspiceSimulator]:
        return self._cls

    def resample_control(self, raw_path: Path, native_path: Path | None = None,
                         native: list[str] | None = None) -> str | None:
        if any(c.isspace() for c in str(raw_path) + str(native_path or "")):  # ngspice's write takes quotes literally
            return None
        # 'quit' ends the batch run here: without it ngspice would run the analysis a second time for -r.
        first = [f"write {native_path} {' '.join(native)}"] if native_path is not None and native else []
        return "\n".join([".control", "run", *first, "linearize", f"write {raw_path}", "quit", ".endc"])

    def install_hint(self) -> str:
        where = f" (looked for {self.executable!r})" if self.executable else ""
        return (f"Install it with 'sudo apt-get install -y ngspice'{where} (./buckbi.sh does), or run on LTspice with "
                "--simulator ltspice; for a PyTorch network, --simulator pwl (the fast exact simulator) needs "
                "neither.")

    def __repr__(self) -> str:
        return f"NgspiceBackend(executable={self.executable!r}, compatibility={self.compatibility!r})"
