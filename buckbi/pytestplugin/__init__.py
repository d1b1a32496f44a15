"""buckbi's pytest plugin: SPICE-in-the-loop fixtures, markers and options (entry point ``pytest11``)."""
from .fixtures import *  # noqa: F401,F403  (fixtures must be module attributes for pytest)
from .hooks import *  # noqa: F401,F403
