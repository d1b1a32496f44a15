"""A plain install works from any folder: ``pip install buckbi pytest`` (non-editable, into a fresh virtual
environment holding nothing else: no test extras, no pytest-html, no matplotlib, no xdist), then the CLI, the circuits
as package data, the plugin and its installed checks (``pytest --pyargs buckbi.checks``, ``--junitxml``) run from
a folder outside the repository. Built as a wheel from this checkout; the dependencies come from the package
index as a user's would (pip's cache makes a rerun quick)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared import build_once

REPO = Path(__file__).resolve().parents[1]


def _install(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, capture_output=True, text=True)
    wheel = next((root / "dist").glob("buckbi-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    res = subprocess.run([str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", str(wheel), "pytest"], capture_output=True, text=True,
                         timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(python of the new environment, a working folder outside the repo)."""
    root = build_once(tmp_path_factory, "install", _install)
    work = tmp_path_factory.mktemp("work")
    return root / "venv" / "bin" / "python", work


def run(installed, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    py, work = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BUCKBI_SIMULATOR")}
    return subprocess.run([str(py), *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_package_comes_from_the_new_environment_with_its_circuits(installed):
    res = run(installed, "-c", "import buckbi; from buckbi.converters.buck import circuits_dir; "
                               "print(buckbi.__file__); print(circuits_dir())")
    assert res.returncode == 0, res.stderr
    module, circuits = res.stdout.split()
    assert str(REPO) not in module and "site-packages" in module
    assert circuits.endswith(os.path.join("buckbi", "circuits")) and str(REPO) not in circuits


@pytest.mark.parametrize("command", [
    ["evaluate", "--actor", "seed-pretrained", "--simulator", "pwl", "--points", "1", "--steps", "64", "--out", "ev"],
    ["evaluate", "--actor", "seed-pretrained", "--simulator", "ngspice", "--points", "1", "--steps", "64",
     "--scenario", "linestep", "--out", "ev-line"],
    ["train", "--simulator", "pwl", "--episodes", "1", "--steps", "64", "--spice-check-every", "0", "--quiet",
     "--workdir", "gym"],
    ["sweep", "--actor", "seed-pretrained", "--simulator", "pwl", "--grid", "vin=200,vref=100", "--steps", "64",
     "--jobs", "1", "--quiet", "--out", "sw"],
], ids=["evaluate-pwl", "evaluate-ngspice-linestep", "train", "sweep"])
def test_the_cli_runs_from_outside_the_repository(installed, command):
    res = run(installed, "-m", "buckbi", *command)
    if command[0] == "train":
        assert res.returncode == 0, res.stderr[-3000:]
    else:  # 64-period runs: a verdict (pass or fail), never an error
        assert res.returncode in (0, 1) and "verdict: " in res.stdout, res.stderr[-3000:]


def test_the_installed_checks_run_as_pytest_items(installed):
    res = run(installed, "-m", "pytest", "--pyargs", "buckbi.checks", "-m", "ltspice", "-q", "-p",
              "no:cacheprovider", "--buckbi-steps", "64", "--buckbi-regulation-points", "1", "--buckbi-regulation-steps", "256",
              "--buckbi-regulation-scenarios", "startup,loadstep", "--buckbi-actor", "seed-pretrained")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and "failed" not in res.stdout


def test_the_installed_regulation_check_asks_for_the_loop_gain_and_fails_a_barely_stable_network(installed):
    """The seed-pretrained actor has 6-16 degrees of phase margin (README): the default check fails it there."""
    res = run(installed, "-m", "pytest", "--pyargs", "buckbi.checks.test_regulation", "-q", "-p", "no:cacheprovider",
              "--buckbi-simulator", "pwl", "--buckbi-actor", "seed-pretrained", "--buckbi-regulation-points", "2",
              "--junitxml", "regulation.xml", "-W", "error::pytest.PytestWarning")
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    assert "test_the_network_regulates_alone[fra]" in res.stdout and "phase_margin_deg" in res.stdout
    assert "warning" not in res.stdout.lower()
    assert (installed[1] / "regulation.xml").is_file()


def test_the_default_plan_runs_from_the_installed_package_as_cli_and_as_pytest_items(installed):
    # PLAN "default" is package data: one test at one corner through the CLI, three start-up items in pytest (-n 2)
    res = run(installed, "-m", "buckbi", "testplan", "default", "--actor", "seed-pretrained", "--simulator", "pwl",
              "--only", "loadstep[vin200-vref100-half]", "--jobs", "1", "--quiet", "--out", "plan")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (installed[1] / "plan" / "report.html").is_file()
    res = run(installed, "-m", "pytest", "--pyargs", "buckbi.checks.test_plan", "--buckbi-plan", "default",
              "--buckbi-actor", "seed-pretrained", "--buckbi-simulator", "pwl", "-k", "startup and vin200 and half",
              "-q", "-p", "no:cacheprovider", "--junitxml", "plan.xml", "-W", "error::pytest.PytestWarning")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 passed" in res.stdout and "warning" not in res.stdout.lower()
    xml = (installed[1] / "plan.xml").read_text()
    assert '<property name="nn.settle_ms"' in xml  # the figures reach the JUnit report
