"""The simulator layer against real ngspice: analytic values, parallel runs, every error type."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from buckbi import sample_on_clock
from buckbi.sim import (ConvergenceError, MissingTraceError, NetlistError, NgspiceBackend, NonFiniteTraceError, RawFileError, SimJob,
                        SimulationTimeoutError, SimulatorNotFoundError, get_simulator, read_raw, run_netlist,
                        run_netlists)

pytestmark = pytest.mark.ltspice

# RC low-pass driven by a 1 V step at t=0, and a 1 kHz clock whose falling edges we sample on.
RC = """* RC + clock
V1 in 0 PULSE(0 1 0 1n 1n 1 2)
R1 in OUT {rval}
XC OUT 0 cap
VCLK CtrlClk 0 PULSE(0 1 0.25m 1n 1n 0.45m 1m)
.save V(OUT) V(ctrlclk)
.options method=gear reltol=1e-6
.tran 1u 5m 0 2u
.end
"""
CAP = ".subckt cap a b\nC1 a b 1u\n.ends cap\n"


@pytest.fixture
def cap_file(tmp_path):
    path = tmp_path / "cap.lib"
    path.write_text(CAP)
    return path


def test_rc_with_params_includes_and_clock_sampling(simulator, tmp_path, cap_file):
    job = SimJob(RC, params={"rval": 1e3}, includes=[cap_file], traces=["V(out)", "V(ctrlclk)"])
    res = run_netlist(job, tmp_path / "work", simulator=simulator)
    df = res.data
    assert list(df.columns) == ["time", "V(out)", "V(ctrlclk)"]  # lowercase node names, seed style
    rows = sample_on_clock(df)  # falling edges at 0.7 ms + k * 1 ms
    assert len(rows) == 5
    np.testing.assert_allclose(rows["time"], 0.7e-3 + 1e-3 * np.arange(5) + 2e-9, atol=2.1e-6)
    analytic = 1.0 - np.exp(-rows["time"].to_numpy() / 1e-3)  # tau = R C = 1 ms
    np.testing.assert_allclose(rows["V(out)"], analytic, atol=2e-5)
    assert not any((tmp_path / "work").iterdir()), "run files are cleaned up by default"


def test_keep_files(simulator, tmp_path, cap_file):
    res = run_netlist(SimJob(RC, params={"rval": 1e3}, includes=[cap_file]), tmp_path, simulator=simulator,
                      keep_files=True)
    assert all(p.exists() for p in res.files)
    assert read_raw(res.files[1], traces=["V(out)"]).shape[1] == 2


def test_parallel_runs_keep_their_own_results(simulator, tmp_path, cap_file):
    jobs = [SimJob(RC, params={"rval": r}, includes=[cap_file], traces=["V(out)"], name=f"rc{r:g}")
            for r in (500.0, 2000.0)]
    fast, slow = run_netlists(jobs, tmp_path, simulator=simulator, parallel=2)
    for res, tau in ((fast, 0.5e-3), (slow, 2e-3)):
        t = res.data["time"].to_numpy()
        np.testing.assert_allclose(res.data["V(out)"], 1 - np.exp(-t / tau), atol=5e-5)


def test_tiny_timeout_raises_timeout_error(simulator, tmp_path, cap_file):
    slow = RC.replace(".tran 1u 5m 0 2u", ".tran 1n 2 0 1n")
    with pytest.raises(SimulationTimeoutError, match="timeout"):
        run_netlist(SimJob(slow, params={"rval": 1e3}, includes=[cap_file]), tmp_path, simulator=simulator,
                    timeout=0.5)


def test_unreachable_simulator_path_says_how_to_install(tmp_path):
    backend = NgspiceBackend(executable="/nonexistent/bin/ngspice")
    with pytest.raises(SimulatorNotFoundError, match="apt-get install -y ngspice"):
        run_netlist(RC, tmp_path, simulator=backend)


def test_non_convergence_raises_with_log_excerpt(simulator, tmp_path):
    # An ideal relaxation loop with no stable operating point.
    bad = "* no operating point\nB1 a 0 V=(V(a)>0.5) ? 0 : 1\nC1 a 0 1p\n.tran 1u 1m\n.end\n"
    with pytest.raises(ConvergenceError) as err:
        run_netlist(bad, tmp_path, simulator=simulator)
    assert "timestep too small" in err.value.log_excerpt.lower()


def test_netlist_error(simulator, tmp_path):
    with pytest.raises(NetlistError, match="rejected"):
        run_netlist("* bad\nX1 a b nosuchsubckt\n.op\n.end\n", tmp_path, simulator=simulator)


def test_missing_trace_lists_what_exists(simulator, tmp_path, cap_file):
    with pytest.raises(MissingTraceError, match=r"V\(nope\)"):
        run_netlist(SimJob(RC, params={"rval": 1e3}, includes=[cap_file], traces=["V(nope)"]), tmp_path,
                    simulator=simulator)


def test_corrupt_raw_file(tmp_path):
    raw = tmp_path / "x.raw"
    raw.write_bytes(b"Title: x\nNo. Variables: 2\ngarbage")
    with pytest.raises(RawFileError, match="corrupt"):
        read_raw(raw)


def test_nan_trace_is_reported(simulator, tmp_path):
    # ngspice itself refuses to produce NaN, so poison the last value of a real raw file.
    res = run_netlist("* op\nV1 a 0 1\nR1 a b 1\nR2 b 0 1\n.op\n.end\n", tmp_path, simulator=simulator,
                      keep_files=True)
    raw = res.files[1]
    data = bytearray(raw.read_bytes())
    data[-8:] = struct.pack("<d", float("nan"))
    raw.write_bytes(bytes(data))
    with pytest.raises(NonFiniteTraceError, match="NaN"):
        read_raw(raw)


def test_selection_env_and_explicit(monkeypatch):
    monkeypatch.setenv("BUCKBI_SIMULATOR", "ngspice")
    assert get_simulator().name == "ngspice"
    assert get_simulator("ltspice").name == "ltspice"
    monkeypatch.setenv("BUCKBI_SIMULATOR", "spectre")
    with pytest.raises(ValueError, match="unknown simulator 'spectre'"):
        get_simulator()
    monkeypatch.delenv("BUCKBI_SIMULATOR")
    # auto: LTspice when spicelib finds it, else ngspice (both answers forced, whatever this machine has)
    from buckbi.sim import LTspiceBackend
    monkeypatch.setattr(LTspiceBackend, "is_available", lambda self: True)
    assert get_simulator("auto").name == "ltspice"
    monkeypatch.setattr(LTspiceBackend, "is_available", lambda self: False)
    assert get_simulator("auto").name == "ngspice"
