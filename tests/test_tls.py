"""A TLS-secured Dask cluster on 127.0.0.1 with a throwaway CA: sweep, evaluate and a test plan run through it,
and a plain tcp:// client is refused in one line that names the fix (README "Secured clusters")."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DASK = Path(sys.executable).with_name("dask")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A scheduler and one worker that accept TLS only, certificates from a CA made here; yields (address, env)."""
    if shutil.which("openssl") is None or not DASK.exists():
        pytest.skip("needs openssl and the dask command")
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=buckbi throwaway CA", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "node.pem", "-days", "1", "-extfile", "san.ext", cwd=d)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_") and k != "BUCKBI_DASK_SCHEDULER"}
    env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
    env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] = str(d / "ca.pem")
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = str(d / "node.pem")
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = str(d / "node.key")
    info = d / "scheduler.json"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)], env=env,
                              stdout=open(d / "scheduler.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)]
    deadline = time.time() + 60
    while not info.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert info.exists(), (d / "scheduler.log").read_text()
    address = json.loads(info.read_text())["address"]
    assert address.startswith("tls://127.0.0.1:")
    procs.append(subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-dashboard", "--host",
                                   "127.0.0.1", "--local-directory", str(d / "w")], env=env,
                                  stdout=open(d / "worker.log", "w"), stderr=subprocess.STDOUT, start_new_session=True))
    from distributed import Client
    import dask
    with dask.config.set({"distributed.comm.require-encryption": True,
                          "distributed.comm.tls.ca-file": str(d / "ca.pem"),
                          "distributed.comm.tls.client.cert": str(d / "node.pem"),
                          "distributed.comm.tls.client.key": str(d / "node.key")}):
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=90)
    yield address, env
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def buckbi(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


def test_sweep_evaluate_and_a_plan_run_through_a_tls_scheduler(tls_cluster, tmp_path):
    address, env = tls_cluster
    res = buckbi("sweep", "--actor", "seed-pretrained", "--simulator", "pwl", "--grid", "vin=180:220:2,vref=100",
                 "--steps", "128", "--scheduler", address, "--quiet", "--out", "sw", env=env, cwd=tmp_path)
    assert res.returncode in (0, 1) and "verdict: " in res.stdout, res.stderr[-2000:]  # 2.6 ms: a verdict, no error
    assert "2 points, 2 ok" in res.stdout
    res = buckbi("evaluate", "--actor", "seed-pretrained", "--simulator", "pwl", "--points", "2", "--steps", "128",
                 "--scheduler", address, "--out", "ev", env=env, cwd=tmp_path)
    assert res.returncode in (0, 1) and "verdict: " in res.stdout, res.stderr[-2000:]
    assert (tmp_path / "ev" / "evaluate.csv").is_file()
    res = buckbi("testplan", "default", "--actor", "seed-pretrained", "--simulator", "pwl", "--only",
                 "loadstep[vin200-vref100-half]", "--scheduler", address, "--quiet", "--out", "plan", env=env,
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]


def test_a_plain_tcp_client_is_refused_in_one_line_naming_the_fix(tls_cluster, tmp_path):
    address, env = tls_cluster
    plain = address.replace("tls://", "tcp://")
    res = buckbi("sweep", "--actor", "seed-pretrained", "--simulator", "pwl", "--grid", "vin=200,vref=100", "--steps",
                 "64", "--scheduler", plain, "--quiet", "--out", "sw", env=env, cwd=tmp_path)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("buckbi sweep: error")]
    assert len(lines) == 1 and "tls://HOST:PORT" in lines[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr
