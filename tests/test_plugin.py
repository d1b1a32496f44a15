"""The pytest plugin itself, tested with pytester: markers, options, skip messages."""
from __future__ import annotations

pytest_plugins = ["pytester"]


def test_markers_are_registered(pytester):
    result = pytester.runpytest("--markers")
    for marker in ("ltspice", "slow", "nightly", "training"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{marker}: *"])


def test_simulator_fixture_skips_with_install_hint(pytester):
    pytester.makepyfile("def test_needs_spice(simulator):\n    assert False\n")
    result = pytester.runpytest("--simulator", "ltspice", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*ltspice not found*Install LTspice*--simulator ngspice*"])


def test_slow_tests_skip_unless_asked(pytester):
    pytester.makepyfile("import pytest\n@pytest.mark.slow\ndef test_long():\n    pass\n")
    pytester.runpytest("-rs").assert_outcomes(skipped=1)
    pytester.runpytest("--run-slow").assert_outcomes(passed=1)


def test_options_in_buckbi_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["buckbi SPICE-in-the-loop validation:", "*--simulator*", "*--update-golden*"])
