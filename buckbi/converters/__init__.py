"""Converters buckbi validates controllers of: each a spec (operating point, I/O, gyms, scenarios, circuits)."""
