"""Closed-loop figures (DC error, overshoot, settling, ...) and the held-out evaluation of a network."""
