"""The fast exact simulator of the gyms (``simulator="pwl"``): piecewise-linear circuit, modal propagation
between events, numba kernel. An episode engine beside SPICE, not a netlist simulator."""
from .circuit import GymCircuit, read_circuit
from .simulate import PwlUnsupportedError, compile_actor, require_pytorch_actor, run_episode_pwl, simulate

__all__ = ["GymCircuit", "read_circuit", "PwlUnsupportedError", "compile_actor", "require_pytorch_actor",
           "run_episode_pwl", "simulate"]
