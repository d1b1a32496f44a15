"""Exceptions of the simulator layer; each carries the log excerpt when there is one."""
from __future__ import annotations


class SimulatorError(RuntimeError):
    """A SPICE run failed."""

    def __init__(self, message: str, log_excerpt: str = ""):
        self.log_excerpt = log_excerpt
        text = message if not log_excerpt else f"{message}\n--- simulator log (excerpt) ---\n{log_excerpt}"
        super().__init__(text)


class SimulatorNotFoundError(SimulatorError):
    """No simulator executable could be found."""


class SimulationTimeoutError(SimulatorError, TimeoutError):
    """The simulator ran past its timeout and was killed."""


class ConvergenceError(SimulatorError):
    """The simulator gave up: timestep too small, singular matrix, gmin/source stepping failed."""


class NetlistError(SimulatorError):
    """The simulator rejected the netlist (unknown model, syntax error, missing include)."""


class RawFileError(SimulatorError):
    """The raw file is missing, empty or cannot be read."""


class NonFiniteTraceError(SimulatorError):
    """A trace holds NaN or infinite values."""


class MissingTraceError(SimulatorError, KeyError):
    """A requested trace is not in the results."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.args[0]
