"""One episode: the circuit, the run on an engine, the NN's rows sampled on the control clock."""
