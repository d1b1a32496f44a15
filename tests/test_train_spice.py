"""Training and evaluation end to end in ngspice: artefacts, resume, kill -9 safety, loss convergence."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from buckbi.nn.checkpoint import load_checkpoint
from buckbi.train import TrainConfig, train

pytestmark = pytest.mark.ltspice


def buckbi(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True, timeout=600, **kw)


def test_train_cli_writes_every_artefact_and_continues(simulator, tmp_path):
    work = tmp_path / "gym"
    res = buckbi("train", "--recipe", "seed", "--workdir", str(work), "--episodes", "3", "--steps", "256", "--seed", "4", "--quiet")
    assert res.returncode == 0, res.stderr
    for ep in (1, 2, 3):
        for name in (f"actor_ep{ep}.pth", f"BUCK_VM_BI_nn_ep{ep}.sp", f"BUCK_VM_BI_param_ep{ep}.txt",
                     f"episodes/ep{ep}.csv.gz"):
            assert (work / name).exists(), name
    for name in ("actor_final.pth", "log.csv", "loss_plot.html", "episode_plot.html", "plotly.min.js",
                 "BUCK_VM_BI_nn.sp", "BUCK_VM_BI_param.txt"):
        assert (work / name).exists(), name
    assert ".subckt ActorSubckt" in (work / "BUCK_VM_BI_nn_ep2.sp").read_text()
    assert ".param STEPS=256" in (work / "BUCK_VM_BI_param_ep2.txt").read_text()
    rows = pd.read_csv(work / "episodes" / "ep3.csv.gz")
    assert len(rows) == 257 and {"V(nnin1)", "V(nnpwm)", "V(nnout1)"} <= set(rows.columns)
    res = buckbi("train", "--recipe", "seed", "--workdir", str(work), "--episodes", "1", "--steps", "256", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "[Ep4] gym1" in res.stderr
    log = pd.read_csv(work / "log.csv")
    assert list(log["episode"]) == [1, 2, 3, 4] and (log["status"] == "ok").all()
    assert np.isfinite(log["loss_actor"]).all()


def test_kill_minus_9_mid_episode_loses_at_most_that_episode(simulator, tmp_path):
    work = tmp_path / "gym"
    cmd = [sys.executable, "-m", "buckbi", "train", "--recipe", "seed", "--workdir", str(work), "--episodes", "30", "--steps", "512",
           "--seed", "8", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if (work / "log.csv").exists() and len(pd.read_csv(work / "log.csv")) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("training did not log two episodes in time")
        time.sleep(1.0)  # the third episode is running now
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the python process and its ngspice children
        proc.wait()
    logged = list(pd.read_csv(work / "log.csv")["episode"])
    # what the kill left committed (checkpoint and log): a kill between an episode's log row and its checkpoint leaves
    # that row uncommitted, and the resumed run redoes it
    committed = load_checkpoint(work / "actor_final.pth")[1]["episode"]
    assert logged[-1] - 1 <= committed <= logged[-1]
    res = subprocess.run([*cmd[:8], "--episodes", "2", "--steps", "512", "--quiet"], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    log = pd.read_csv(work / "log.csv")
    assert list(log["episode"]) == list(range(1, len(log) + 1))  # contiguous, nothing duplicated
    assert len(log) == committed + 2 and (log["status"] == "ok").all()
    _, meta = load_checkpoint(work / "actor_final.pth")
    assert meta["episode"] == len(log)
    assert not list(work.glob(".*.tmp"))  # a write cut short by the kill is cleaned up
    for ep in log["episode"]:
        load_checkpoint(work / f"actor_ep{ep}.pth")  # every per-episode checkpoint is whole


@pytest.mark.slow
def test_loss_converges_on_a_short_gym1_schedule(simulator, tmp_path):
    log = train(TrainConfig(workdir=tmp_path / "gym", schedule="gym1:30", steps=512, seed=3, progress=False,
                            simulator=simulator))
    loss = log["loss_actor"].to_numpy()
    assert (log["status"] == "ok").all() and len(loss) == 30
    assert loss[-5:].mean() <= loss[0] / 10, f"first {loss[0]:.3e}, last five {loss[-5:]}"


def test_evaluate_cli_prints_the_table_and_writes_the_plot(simulator, tmp_path):
    from buckbi.nn.checkpoint import save_checkpoint, seed_actor
    actor = tmp_path / "actor.pth"
    save_checkpoint(actor, seed_actor())
    res = buckbi("evaluate", "--actor", str(actor), "--points", "2", "--steps", "128", "--out", str(tmp_path / "ev"))
    assert res.returncode == 1 and "verdict: FAIL" in res.stdout, res.stderr  # an untrained actor does not regulate
    assert "nn_sse_%" in res.stdout and "teacher_settle_ms" in res.stdout
    table = pd.read_csv(tmp_path / "ev" / "evaluate.csv")
    assert len(table) == 2 and np.isfinite(table["teacher_sse_%"]).all()
    assert "src=\"plotly.min.js\"" in (tmp_path / "ev" / "evaluate_plot.html").read_text()


def test_evaluate_cli_load_step_scenario_with_a_netlist_file(simulator, tmp_path):
    # Any exporter's file works as the actor; the load-step scenario runs 80 ms with the steps marked in the plot.
    import torch
    from buckbi.export import export_model
    lin = torch.nn.Linear(19, 1)
    with torch.no_grad():  # a proportional controller on the error input NNin6, around a 0.5 duty
        lin.weight.zero_()
        lin.weight[0, 5] = -40.0
        lin.bias.fill_(0.0)
    export_model(torch.nn.Sequential(lin, torch.nn.Sigmoid()), tmp_path / "p.sp", subckt_name="ActorSubckt",
                 dialect="ltspice", input_names=[f"NNin{i}" for i in range(1, 20)], output_names=["NNout1"])
    res = buckbi("evaluate", "--netlist", str(tmp_path / "p.sp"), "--points", "1", "--scenario", "loadstep",
                 "--out", str(tmp_path / "ev"))
    assert res.returncode in (0, 1) and "verdict: " in res.stdout, res.stderr  # a P controller may miss: the verdict says
    assert (res.returncode == 1) == ("verdict: FAIL" in res.stdout)
    table = pd.read_csv(tmp_path / "ev" / "evaluate.csv")
    row = table.iloc[0]
    for col in ("sse_%", "up_dev_%", "down_dev_%"):
        assert np.isfinite(row[f"nn_{col}"]) and np.isfinite(row[f"teacher_{col}"]), col
    # The Type-III teacher recovers from both steps; the proportional controller's recovery is a number or
    # "never" (inf: its steady-state error under the heavy load may stay outside the 2 % band), not missing.
    assert 0 <= row["teacher_up_rec_ms"] < 10 and 0 <= row["teacher_down_rec_ms"] < 10
    assert not np.isnan(row["nn_up_rec_ms"]) and not np.isnan(row["nn_down_rec_ms"])
    assert row["teacher_up_dev_%"] > 0.5 and row["nn_up_dev_%"] > 0.5  # the load really stepped
    assert "load step up" in (tmp_path / "ev" / "evaluate_plot.html").read_text()


@pytest.mark.parametrize("args,message", [
    (["--netlist", "missing.sp"], "does not exist"),
    (["--netlist", "wrong.sp"], "has no '.subckt ActorSubckt'"),
    (["--netlist", "ports.sp"], "has 3 ports"),
])
def test_evaluate_cli_refuses_bad_netlists(tmp_path, args, message):
    (tmp_path / "wrong.sp").write_text(".subckt Other a b\nR1 a b 1\n.ends\n")
    (tmp_path / "ports.sp").write_text(".subckt ActorSubckt NNIN1 NNIN2\n+ NNOUT1\nR1 NNIN1 NNOUT1 1\n.ends\n")
    res = buckbi("evaluate", *args, "--out", str(tmp_path / "ev"), cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr
    assert not (tmp_path / "ev").exists()


def test_evaluate_cli_refuses_an_unknown_scenario(tmp_path):
    res = buckbi("evaluate", "--actor", "published", "--scenario", "rampdown", cwd=tmp_path)
    assert res.returncode == 2 and "invalid choice: 'rampdown'" in res.stderr


@pytest.mark.slow
def test_training_on_the_fast_simulator_is_checked_in_ngspice(simulator, tmp_path):
    """The real SPICE check of training: a short pwl run whose every episode also runs in ngspice at T/400; the
    deviations land in log.csv, within the check's tolerance (a planted disagreement stops training: test_train)."""
    from buckbi.pwl.agreement import SPICE_CHECK
    log = train(TrainConfig(workdir=tmp_path / "gym", schedule="gym1:2", steps=256, epochs=20, seed=5,
                            progress=False, simulator="pwl", spice_check_every=1, spice_simulator=simulator.name))
    assert (log["status"] == "ok").all() and len(log) == 2
    for group in ("vout_pct_of_vin", "plant_inputs", "duty_inputs", "nn_out"):
        values = log[f"spice_{group}"].to_numpy()
        assert np.isfinite(values).all() and (values > 0).all(), group  # measured, not a placeholder
        assert (values <= getattr(SPICE_CHECK, group)).all(), (group, values)
