"""The small interface every simulator backend implements, and how one is chosen."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

from spicelib.sim.simulator import Simulator

from .errors import ConvergenceError, NetlistError, SimulatorNotFoundError

# Phrases in simulator logs that mean the solver gave up, and that the netlist was rejected.
_CONVERGENCE = re.compile(
    r"timestep too small|singular matrix|gmin stepping failed|source stepping failed|"
    r"transient op failed|no convergence|iteration limit reached|analysis failed|"
    r"time step too small|failed to converge",
    re.IGNORECASE,
)
_ABORTED = re.compile(r"timestep too small|simulation\(s\) aborted", re.IGNORECASE)
_NETLIST = re.compile(
    r"unknown model|could not find include file|can't find model|error on line|unknown subckt|"
    r"syntax error|unable to find definition|error: no such|there aren't any circuits loaded|"
    r"undefined parameter|fatal error",
    re.IGNORECASE,
)


def excerpt(log: str, pattern: re.Pattern | None = None, context: int = 3, limit: int = 25) -> str:
    """Lines of ``log`` around the last match of ``pattern`` (the final verdict), or its tail."""
    lines = [ln for ln in log.splitlines() if ln.strip()]
    if pattern is not None:
        for i in reversed(range(len(lines))):
            if pattern.search(lines[i]):
                return "\n".join(lines[max(0, i - context): i + context + 1])
    return "\n".join(lines[-limit:])


class Backend(ABC):
    """One SPICE simulator, run through a spicelib ``Simulator`` class."""

    name: str = ""
    raw_dialect: str | None = None
    netlist_dialect: str = "ngspice"  # the exporter dialect (buckbi.export) this simulator reads

    @abstractmethod
    def spicelib_simulator(self) -> type[Simulator]:
        """The spicelib class SimRunner runs netlists with."""

    @abstractmethod
    def install_hint(self) -> str:
        """How a user gets this simulator."""

    def is_available(self) -> bool:
        return self.spicelib_simulator().is_available()

    def switches(self) -> list[str]:
        """Extra command-line switches for every run."""
        return []

    def resample_control(self, raw_path: Path, native_path: Path | None = None,
                         native: list[str] | None = None) -> str | None:
        """Netlist lines that write the saved traces on the .tran step grid to ``raw_path`` (and first the traces
        ``native`` at every computed point to ``native_path``); None: unsupported."""
        return None

    def ensure_available(self) -> None:
        if not self.is_available():
            raise SimulatorNotFoundError(f"{self.name} was not found. {self.install_hint()}")

    def check_log(self, log: str, returncode: int) -> None:
        """Raise the specific error a run's log shows, if any.

        A successful run may log recovered gmin/source stepping, so those phrases count only when the
        simulator failed; an aborted transient counts always.
        """
        failed = returncode != 0 or _ABORTED.search(log)
        if failed and _CONVERGENCE.search(log):
            raise ConvergenceError(
                f"{self.name} did not converge. Check the circuit for floating nodes or ideal loops, "
                "or relax the solver (method=gear, smaller maxstep).", excerpt(log, _CONVERGENCE))
        if failed and _NETLIST.search(log):
            raise NetlistError(f"{self.name} rejected the netlist.", excerpt(log, _NETLIST))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
