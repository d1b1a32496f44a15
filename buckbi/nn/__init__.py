"""Networks: the one table of activations that every consumer of a lowered network reads."""
from .activations import ACTIVATIONS, MODULES, ActivationKind, ActivationModule, module_entry, spice_number

__all__ = ["ACTIVATIONS", "MODULES", "ActivationKind", "ActivationModule", "module_entry", "spice_number"]
