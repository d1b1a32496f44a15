"""Simulator layer: one small backend interface (ngspice, LTspice), a runner, clear errors."""
from .backend import Backend
from .errors import (ConvergenceError, MissingTraceError, NetlistError, NonFiniteTraceError, RawFileError,
                     SimulationTimeoutError, SimulatorError, SimulatorNotFoundError)
from .ltspice import LTspiceBackend
from .ngspice import NgspiceBackend
from .select import ENV_VAR, FAST, available_backends, get_simulator, simulator_name
from .runner import SimJob, SimResult, canonical_trace, read_raw, run_netlist, run_netlists

__all__ = [
    "ENV_VAR", "FAST", "simulator_name", "Backend", "available_backends", "get_simulator", "NgspiceBackend", "LTspiceBackend",
    "SimJob", "SimResult", "canonical_trace", "read_raw", "run_netlist", "run_netlists",
    "SimulatorError", "SimulatorNotFoundError", "SimulationTimeoutError", "ConvergenceError", "NetlistError",
    "RawFileError", "NonFiniteTraceError", "MissingTraceError",
]
