"""The fast exact simulator of the gyms (``simulator="pwl"``): piecewise-linear circuit, modal propagation
between events, numba kernel. The fast engine (``buckbi.engines.fast``) runs it; it is not a netlist simulator."""
from .circuit import GymCircuit, read_circuit, scenario_signals
from .simulate import PwlUnsupportedError, compile_actor, require_pytorch_actor, simulate

__all__ = ["GymCircuit", "read_circuit", "scenario_signals", "PwlUnsupportedError", "compile_actor",
           "require_pytorch_actor", "simulate"]
