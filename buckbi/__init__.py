"""buckbi: SPICE-in-the-loop behaviour-imitation training and validation of NN controllers."""
from .export import (ExportError, NonFiniteWeightError, TrainingModeError, UnsupportedLayerError,
                     WidthMismatchError, export_model, export_model_to_ltspice, step_reference)

__version__ = "0.1.0"

__all__ = [
    "export_model", "export_model_to_ltspice", "step_reference", "ExportError", "UnsupportedLayerError",
    "NonFiniteWeightError", "WidthMismatchError", "TrainingModeError",
]
