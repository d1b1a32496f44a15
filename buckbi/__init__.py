"""buckbi: SPICE-in-the-loop behaviour-imitation training and validation of NN controllers."""
from .episode import (GYMS, Episode, EpisodeError, EpisodeParams, prepare_episode, run_episode,
                      run_episodes)
from .export import (ExportError, NonFiniteWeightError, TrainingModeError, UnsupportedLayerError,
                     WidthMismatchError, export_model, export_model_to_ltspice, step_reference)
from .sampling import (ClockStartsHighError, NoClockEdgesError, SamplingError, edge_indices, extract_data,
                       sample_on_clock)

__version__ = "0.1.0"

__all__ = [
    "GYMS", "Episode", "EpisodeError", "EpisodeParams", "prepare_episode", "run_episode", "run_episodes",
    "export_model", "export_model_to_ltspice", "step_reference", "ExportError", "UnsupportedLayerError",
    "NonFiniteWeightError", "WidthMismatchError", "TrainingModeError", "sample_on_clock", "extract_data",
    "edge_indices", "SamplingError", "ClockStartsHighError", "NoClockEdgesError",
]
