"""Options, markers and collection hooks of the buckbi pytest plugin."""
from __future__ import annotations

import pytest

MARKERS = {
    "ltspice": "runs a real SPICE simulator (ngspice by default, LTspice when selected)",
    "slow": "long SPICE runs (full-length episodes, training); run with --run-slow or -m slow",
    "nightly": "regression of golden exported networks; run with -m nightly",
    "training": "training-as-test episodes; run with --train-as-test",
}

simulator_key = pytest.StashKey[object]()

__all__ = ["pytest_addoption", "pytest_configure", "pytest_collection_modifyitems", "simulator_key", "MARKERS"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("buckbi", "buckbi SPICE-in-the-loop validation")
    group.addoption("--simulator", default=None, choices=("auto", "ngspice", "ltspice"),
                    help="SPICE backend for ltspice-marked tests (default: $BUCKBI_SIMULATOR or auto)")
    group.addoption("--run-slow", action="store_true", default=False,
                    help="also run tests marked slow (full-length SPICE episodes)")
    group.addoption("--update-golden", action="store_true", default=False,
                    help="rewrite golden files instead of comparing against them")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def _selected_by_markexpr(config: pytest.Config, marker: str) -> bool:
    return marker in (config.getoption("markexpr", "") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--run-slow") or _selected_by_markexpr(config, "slow")
    run_nightly = _selected_by_markexpr(config, "nightly")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow SPICE run: enable with --run-slow or -m slow"))
        elif "nightly" in item.keywords and not run_nightly:
            item.add_marker(pytest.mark.skip(reason="nightly regression: enable with -m nightly"))
