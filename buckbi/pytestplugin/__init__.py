"""buckbi's pytest plugin: SPICE-in-the-loop fixtures, markers and options (entry point ``pytest11``).

Modules by role: ``hooks`` (options, markers, collection), ``fixtures``, ``golden`` (nightly regression of
exported networks), ``extras`` (pytest-html attachments).
"""
from .fixtures import *  # noqa: F401,F403  (fixtures must be module attributes for pytest)
from .hooks import *  # noqa: F401,F403
