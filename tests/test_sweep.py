"""buckbi sweep on a real Dask cluster (scheduler and workers started here on 127.0.0.1): a worker killed
mid-sweep costs nothing, a second run resumes, the report renders in headless Chromium."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from buckbi.nn.checkpoint import seed_actor
from buckbi.evaluation.evaluate import Thresholds
from buckbi.sweep import GridError, dask_client, grid_points, parse_grid, point_key, run_sweep, write_sweep_report
from buckbi.sweep.run import ResultWriter, read_results

DASK = Path(sys.executable).with_name("dask")
GRID = "vin=160:240:3,vref=60:120:3"


def test_grid_parsing_and_points():
    axes = parse_grid("vin=150:250:3, vref=50:150:3,Lo=60e-6")
    assert axes["vin"].tolist() == [150.0, 200.0, 250.0] and axes["Lo"].tolist() == [60e-6]
    points, invalid = grid_points(axes, 64)
    assert len(points) == 8 and invalid == 1  # vin 150 with vref 150 is not a buck
    assert all(p.ro == 20.0 and p.Lo == 60e-6 for p in points)
    assert len({point_key(p) for p in points}) == 8
    for bad, message in (("vin=1:2", "cannot read"), ("vout=1:2:3", "unknown axis"), ("vin=1:2:3,vin=4", "twice"),
                         ("", "empty"), ("vin=-1:2:2", "positive")):
        with pytest.raises(GridError, match=message):
            parse_grid(bad)


def test_a_line_cut_by_a_kill_at_any_byte_is_dropped_and_runs_again(tmp_path):
    # What a kill -9 leaves: a real result line cut at some byte. At every position the cut line is dropped,
    # the whole one before it kept, and the next append starts a line of its own.
    path = tmp_path / "sweep.csv"
    columns = ["key", "vin", "steps", "scenario", "status", "nn_sse_%", "error", "host"]
    first = {"key": "vin=200;vref=100", "vin": 200.0, "steps": 20, "scenario": "startup", "status": "ok",
             "nn_sse_%": 0.5, "error": "", "host": "h"}
    second = first | {"key": "vin=210;vref=100", "vin": 210.0, "error": "SimulatorError: a, b", "status": "failed"}
    ResultWriter(path, columns).append(first)
    whole = path.read_bytes()
    ResultWriter(path, columns).append(second)
    line = path.read_bytes()[len(whole):]
    assert line.endswith(b"\n") and len(line) > 40
    for cut in range(len(line)):  # every byte position short of the whole line
        path.write_bytes(whole + line[:cut])
        assert read_results(path)["key"].tolist() == [first["key"]], f"cut at byte {cut}: {line[:cut]!r}"
        ResultWriter(path, columns).append(second)  # resuming writes the point again, on its own line
        table = read_results(path)
        assert table["key"].tolist() == [first["key"], second["key"]], f"cut at byte {cut}"
        assert table["error"].iloc[1] == second["error"] and table["steps"].tolist() == [20, 20]


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two single-threaded worker processes (no nanny: a killed worker stays dead)."""
    if not DASK.exists():
        pytest.skip(f"the dask command is not installed beside {sys.executable}")
    info = tmp_path / "scheduler.json"
    procs = [_start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(info)], tmp_path / "scheduler.log")]
    deadline = time.time() + 60
    while not info.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert info.exists(), (tmp_path / "scheduler.log").read_text()
    address = json.loads(info.read_text())["address"]
    for k in range(2):
        procs.append(_start([str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                             "--host", "127.0.0.1", "--local-directory", str(tmp_path / f"w{k}")],
                            tmp_path / f"worker{k}.log"))
    from distributed import Client
    client = Client(address, timeout="30s")
    client.wait_for_workers(2, timeout=90)
    yield client, procs
    client.close()
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.ltspice
def test_sweep_survives_a_killed_worker_and_resumes(simulator, cluster, tmp_path):
    client, procs = cluster
    torch.manual_seed(4)
    actor = seed_actor().eval()
    points, _ = grid_points(parse_grid(GRID), 128)
    out = tmp_path / "sweep"
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("r", run_sweep(
        actor, points, out, client, simulator="ngspice", progress=False)))
    runner.start()
    deadline = time.time() + 300
    while len(read_results(out / "sweep.csv")) < 1 and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(procs[1].pid, signal.SIGKILL)  # one worker dies while points are in flight
    runner.join(timeout=600)
    assert not runner.is_alive()
    table = pd.read_csv(out / "sweep.csv")
    assert sorted(table["key"]) == sorted(point_key(p) for p in points)  # every point, once
    assert (table["status"] == "ok").all(), table[table["status"] != "ok"][["key", "error"]]
    assert np.isfinite(table["teacher_sse_%"]).all() and np.isfinite(table["nn_sse_%"]).all()
    assert procs[1].poll() is not None and len(client.scheduler_info()["workers"]) == 1
    # A second run finds everything done and runs nothing.
    again = run_sweep(actor, points, out, client, simulator="ngspice", progress=False)
    assert again.ran == 0 and again.done_before == len(points) and len(again.table) == len(points)
    # Resume after losing results: drop two rows, run again, only those two run.
    kept = table.iloc[2:]
    kept.to_csv(out / "sweep.csv", index=False)
    again = run_sweep(actor, points, out, client, simulator="ngspice", progress=False)
    assert again.ran == 2 and sorted(again.table["key"]) == sorted(table["key"])


def test_sweep_report_heatmaps_render_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (./buckbi.sh test installs it)")
    from distributed import Client, LocalCluster
    torch.manual_seed(4)
    points, _ = grid_points(parse_grid(GRID), 256)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            Client(lc) as client:
        res = run_sweep(seed_actor().eval(), points, tmp_path, client, simulator="pwl", progress=False)
    assert len(res.table) == len(points) and (res.table["status"] == "ok").all()
    html = write_sweep_report(res.table, tmp_path, "startup", Thresholds())
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120).stdout
    # 3 start-up figures x (NN, teacher): six heatmap layers, each drawn as an image
    assert dom.count('class="heatmaplayer') == 6 and dom.count("<image") >= 6, dom[:500]
    assert "NN (deploy): steady-state error" in dom and "teacher: overshoot" in dom


def test_sweep_cli_refuses_a_subcircuit_on_the_fast_simulator_before_starting(tmp_path):
    res = subprocess.run([sys.executable, "-m", "buckbi", "sweep", "--netlist", "published", "--simulator", "pwl",
                          "--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "SPICE only" in res.stderr
    assert not (tmp_path / "s").exists()


def test_sweep_cli_says_how_to_reach_a_scheduler(tmp_path):
    res = subprocess.run([sys.executable, "-m", "buckbi", "sweep", "--actor", "seed-pretrained", "--simulator", "pwl",
                          "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "cannot reach the Dask scheduler" in res.stderr and "dask worker" in res.stderr


def test_evaluate_on_dask_gives_the_local_table(tmp_path):
    from distributed import Client, LocalCluster

    from buckbi.evaluation.evaluate import evaluate, evaluate_on_dask, held_out_points
    torch.manual_seed(4)
    actor = seed_actor().eval()
    points = held_out_points(3, 1, 256)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as lc, \
            Client(lc) as client:
        remote, nn_eps, teacher_eps = evaluate_on_dask(actor, points, client, "pwl")
    local, _, _ = evaluate(actor, points, tmp_path, "pwl")
    pd.testing.assert_frame_equal(remote[local.columns], local)
    assert len(nn_eps) == 3 and all(len(e.rows) == 257 for e in nn_eps + teacher_eps)


def _listening() -> set[tuple[str, int]]:
    import psutil
    pids = {p.pid for p in [psutil.Process(), *psutil.Process().children(recursive=True)]}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


@pytest.mark.parametrize("dashboard", [False, True], ids=["no-dashboard", "dashboard"])
def test_the_local_cluster_listens_on_loopback_only(dashboard):
    before = _listening()
    with dask_client(None, 2, dashboard=dashboard) as client:
        opened = _listening() - before
        assert opened, "the local cluster should listen somewhere"
        assert {ip for ip, _ in opened} == {"127.0.0.1"}, f"beyond loopback: {sorted(opened)}"
        if dashboard:
            assert client.dashboard_link.startswith("http://127.0.0.1:")


def test_a_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    # A real kill -9 of the sweep process (and its local cluster) mid-run, then the same command again: every point
    # present exactly once, with every field, and the figures equal to an uninterrupted run's.
    cmd = [sys.executable, "-m", "buckbi", "sweep", "--actor", "seed-pretrained", "--simulator", "pwl", "--jobs", "1",
           "--grid", "vin=160:240:5,vref=60:140:6,ro=20", "--steps", "2048", "--quiet"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = _start(cmd + ["--out", str(killed)], tmp_path / "killed.log")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(read_results(killed / "sweep.csv")) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be killed: " + (tmp_path / "killed.log").read_text()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(read_results(killed / "sweep.csv"))
    assert 3 <= before < 30
    for out in (killed, whole):
        res = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
    a, b = pd.read_csv(killed / "sweep.csv"), pd.read_csv(whole / "sweep.csv")
    assert len(a) == 30 and a["key"].is_unique and set(a["key"]) == set(b["key"])
    assert not a.drop(columns=["nn_error", "teacher_error", "error"]).isna().any().any()
    figures = [c for c in b if c.startswith(("nn_", "teacher_")) and not c.endswith("_error")]
    a, b = a.set_index("key").loc[b["key"]], b.set_index("key")
    pd.testing.assert_frame_equal(a[figures], b[figures])


def test_a_plain_tcp_scheduler_on_another_host_is_warned_about(caplog):
    from buckbi.sweep.run import warn_if_plain_remote
    with caplog.at_level("WARNING", logger="buckbi.sweep"):
        assert warn_if_plain_remote("tcp://10.1.2.3:8786") and "plain tcp://" in caplog.text
        assert warn_if_plain_remote("10.1.2.3:8786")
    for safe in ("tcp://127.0.0.1:8786", "localhost:8786", "tls://10.1.2.3:8786", "tcp://[::1]:8786"):
        assert not warn_if_plain_remote(safe), safe
