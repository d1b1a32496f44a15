"""The voltage-mode buck of the reference: operating point, the NN's 19 inputs, gyms, scenarios, circuits."""
from .circuits import circuit_file, circuits_dir, part_file
from .scenarios import SCENARIOS, Scenario, get_scenario, scenario_params
from .spec import AXES, GYMS, IO, N_INPUTS, NOMINAL, RANGES, SUBCKT, EpisodeParams, Gym, get_gym

__all__ = ["circuit_file", "circuits_dir", "part_file", "SCENARIOS", "Scenario", "get_scenario", "scenario_params",
           "AXES", "GYMS", "IO", "NOMINAL", "N_INPUTS", "RANGES", "SUBCKT", "EpisodeParams", "Gym", "get_gym"]
