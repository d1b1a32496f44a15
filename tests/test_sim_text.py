"""The simulator layer's text handling, without a simulator: composing a job's netlist, reading a run's log."""
from __future__ import annotations


import pytest

from buckbi.sim import ConvergenceError, NetlistError, NgspiceBackend, SimJob
from buckbi.sim.runner import compose


def test_compose_puts_params_and_includes_after_the_title(tmp_path):
    lib = tmp_path / "cap.lib"
    lib.write_text("* lib\n")
    job = SimJob("* title line\nR1 a 0 {rval}\n.end\n", params={"rval": 1000.0, "n": 3}, includes=[lib])
    assert compose(job) == f'* title line\n.param rval=1000.0\n.param n=3\n.include "{lib.resolve()}"\nR1 a 0 {{rval}}\n.end\n'


def test_compose_anchors_a_files_relative_includes_at_the_file(tmp_path):
    (tmp_path / "parts").mkdir()
    cir = tmp_path / "gym.cir"
    cir.write_text('* gym\n.include parts/hold.inc\n.INCLUDE "/abs/x.inc"\n.end\n')
    text = compose(SimJob(cir))
    assert f'.include "{tmp_path.resolve() / "parts/hold.inc"}"' in text
    assert '.INCLUDE "/abs/x.inc"' in text  # absolute paths stay as written


NGSPICE_ABORT = """Circuit: * gym
Doing analysis at TEMP = 27.000000 and TNOM = 27.000000
Warning: singular matrix:  check node inv
doAnalyses: TRAN:  Timestep too small; time = 0.0123, timestep = 1.25e-20: trouble with node "inv"
tran simulation(s) aborted
"""
RECOVERED = """Warning: Dynamic gmin stepping failed
Note: Starting true gmin stepping
Note: True gmin stepping completed
"""


def test_check_log_names_non_convergence_and_rejected_netlists():
    b = NgspiceBackend(executable="/usr/bin/ngspice")
    with pytest.raises(ConvergenceError, match="did not converge") as err:
        b.check_log(NGSPICE_ABORT, 0)  # an aborted transient counts even with exit code 0
    assert "Timestep too small" in err.value.log_excerpt
    with pytest.raises(NetlistError, match="rejected the netlist"):
        b.check_log("Error on line 3 :\n  q1 a b c qmod\nunknown model qmod\n", 1)
    b.check_log(RECOVERED, 0)  # recovered gmin stepping in a successful run is no failure
    with pytest.raises(ConvergenceError):
        b.check_log(RECOVERED + "run simulation(s) aborted\n", 1)
