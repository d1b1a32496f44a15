"""A normal (non-editable) install works from any folder: the CLI, the circuits as package data, the plugin and
its installed checks (``pytest --pyargs buckbi.checks``). Built as a wheel from this checkout, installed into a
fresh virtual environment that borrows this one's dependencies, run from a folder outside the repository."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(python of the new environment, a working folder outside the repo)."""
    root = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, capture_output=True, text=True)
    wheel = next((root / "dist").glob("buckbi-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    # The dependencies (torch, spicelib, ...) from this environment, after the new one's own site-packages.
    # (A .pth line adds a folder without reading the .pth files in it: this checkout's editable hook stays out.)
    (site / "zz_buckbi_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "work"
    work.mkdir()
    return py, work


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
    ["evaluate", "--actor", "pretrained", "--simulator", "pwl", "--points", "1", "--steps", "64", "--out", "ev"],
    ["evaluate", "--actor", "pretrained", "--simulator", "ngspice", "--points", "1", "--steps", "64",
     "--scenario", "linestep", "--out", "ev-line"],
    ["train", "--simulator", "pwl", "--episodes", "1", "--steps", "64", "--spice-check-every", "0", "--quiet",
     "--workdir", "gym"],
    ["sweep", "--actor", "pretrained", "--simulator", "pwl", "--grid", "vin=200,vref=100", "--steps", "64",
     "--jobs", "1", "--quiet", "--out", "sw"],
], ids=["evaluate-pwl", "evaluate-ngspice-linestep", "train", "sweep"])
def test_the_cli_runs_from_outside_the_repository(installed, command):
    res = run(installed, "-m", "buckbi", *command)
    assert res.returncode == 0, res.stderr[-3000:]


def test_the_installed_checks_run_as_pytest_items(installed):
    res = run(installed, "-m", "pytest", "--pyargs", "buckbi.checks", "-m", "ltspice", "-q", "-p",
              "no:cacheprovider", "--buckbi-steps", "64", "--buckbi-regulation-points", "1", "--buckbi-regulation-steps", "256",
              "--buckbi-actor", "pretrained")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and "failed" not in res.stdout


def test_the_default_plan_runs_from_the_installed_package_as_cli_and_as_pytest_items(installed):
    # PLAN "default" is package data: one test at one corner through the CLI, three start-up items in pytest (-n 2)
    res = run(installed, "-m", "buckbi", "testplan", "default", "--actor", "pretrained", "--simulator", "pwl",
              "--only", "loadstep[vin200-vref100-half]", "--jobs", "1", "--quiet", "--out", "plan")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (installed[1] / "plan" / "report.html").is_file()
    res = run(installed, "-m", "pytest", "--pyargs", "buckbi.checks.test_plan", "--buckbi-plan", "default",
              "--buckbi-actor", "pretrained", "--buckbi-simulator", "pwl", "-k", "startup and vin200 and half",
              "-n", "2", "-q", "-p", "no:cacheprovider")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 passed" in res.stdout
