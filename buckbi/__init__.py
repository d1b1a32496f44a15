"""buckbi: SPICE-in-the-loop behaviour-imitation training and validation of NN controllers.

The public names load on first use, so that ``python -m buckbi --help`` does not import PyTorch.
"""
from .util.lazy import lazy_attributes

__version__ = "0.1.0"

__getattr__, __all__ = lazy_attributes(__name__, {
    ".episodes.run": ("GYMS", "Episode", "EpisodeError", "EpisodeParams", "prepare_episode", "run_episode",
                      "run_episodes"),
    ".export": ("export_model", "export_model_to_ltspice", "step_reference", "ExportError", "UnsupportedLayerError",
                "NonFiniteWeightError", "WidthMismatchError", "TrainingModeError"),
    ".episodes.sampling": ("sample_on_clock", "extract_data", "edge_indices", "SamplingError", "ClockStartsHighError",
                           "NoClockEdgesError"),
    ".nn.checkpoint": ("save_checkpoint", "load_checkpoint"),
})
