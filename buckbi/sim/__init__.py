"""Simulator layer: one small backend interface (ngspice, LTspice), a runner, clear errors (loaded on use)."""
from ..util.lazy import lazy_attributes

__getattr__, __all__ = lazy_attributes(__name__, {
    ".backend": ("Backend",),
    ".errors": ("ConvergenceError", "MissingTraceError", "NetlistError", "NonFiniteTraceError", "RawFileError",
                "SimulationTimeoutError", "SimulatorError", "SimulatorNotFoundError"),
    ".ltspice": ("LTspiceBackend",),
    ".ngspice": ("NgspiceBackend",),
    ".select": ("ENV_VAR", "FAST", "available_backends", "get_simulator", "simulator_name"),
    ".runner": ("SimJob", "SimResult", "canonical_trace", "read_raw", "run_netlist", "run_netlists"),
})
