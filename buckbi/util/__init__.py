"""Small helpers shared by every role: atomic, never-clobbering file writes."""
