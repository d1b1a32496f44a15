"""Networks written by other tools (or by buckbi) read back as PyTorch models: subcircuits, ``.machine`` cells."""
