"""Names of the simulator choice that the command line needs without loading a SPICE reader."""
ENV_VAR = "BUCKBI_SIMULATOR"
FAST = "pwl"  # not a SPICE backend: the fast episode engine (buckbi.pwl), chosen at the episode level
