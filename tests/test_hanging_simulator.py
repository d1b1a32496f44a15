"""A simulator that hangs (a stand-in ngspice that never returns): --timeout stops it with a clear error, and the
run goes on with the other work."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd


def test_a_hanging_simulator_is_stopped_by_the_timeout_with_a_clear_error(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ngspice"
    fake.write_text("#!/bin/sh\nexec sleep 600\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", BUCKBI_NN_ELEMENT="subckt")
    env.pop("BUCKBI_SIMULATOR", None)
    (tmp_path / "plan.toml").write_text('[corners.a]\nvin = 200\nvref = 100\nro = 20\n[[tests]]\nname = "s"\n'
                                        'scenario = "startup"\nlimits = { overshoot_pct = 5 }\n')
    res = subprocess.run([sys.executable, "-m", "buckbi", "testplan", "plan.toml", "--actor", "seed-pretrained",
                          "--simulator", "ngspice", "--timeout", "3", "--jobs", "1", "--quiet", "--out", "out"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 1, res.stderr[-2000:]  # the NN cell fails (it could not run), the run ends
    assert "ran past the 3 s timeout" in res.stderr, res.stderr[-2000:]
    table = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False)
    assert table["error"].str.contains("SimulationTimeoutError").all()
    assert "raise the timeout or shorten the run" in table["error"].iloc[0]
    left = subprocess.run(["pgrep", "-f", f"{fake}"], capture_output=True, text=True).stdout.split()
    assert not left, f"the hanging stand-in is still running: {left}"
