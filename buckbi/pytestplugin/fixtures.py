"""Session fixtures of the buckbi pytest plugin."""
from __future__ import annotations

import pytest

from ..sim import Backend, get_simulator
from .hooks import simulator_key

__all__ = ["simulator", "update_golden"]


@pytest.fixture(scope="session")
def simulator(pytestconfig: pytest.Config) -> Backend:
    """The SPICE backend for this session; skips with install instructions when none is found."""
    if simulator_key not in pytestconfig.stash:
        try:
            backend = get_simulator(pytestconfig.getoption("--simulator"))
        except ValueError as err:
            pytest.skip(str(err))
        pytestconfig.stash[simulator_key] = backend
    backend = pytestconfig.stash[simulator_key]
    if not backend.is_available():
        pytest.skip(f"no SPICE simulator: {backend.name} not found. {backend.install_hint()}")
    return backend


@pytest.fixture(scope="session")
def update_golden(pytestconfig: pytest.Config) -> bool:
    """True when the run was asked to rewrite golden files (--update-golden)."""
    return bool(pytestconfig.getoption("--update-golden"))
