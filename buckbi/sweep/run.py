"""``buckbi sweep``: NN against teacher over a whole operating range, on a Dask cluster, resumable and loss-free."""
from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..converters.buck.spec import EpisodeParams
from ..episodes.run import Actor
from ..util.fsutil import append_synced, cut_torn_tail, whole_lines
from .grid import point_key

log = logging.getLogger("buckbi.sweep")
SCHEDULER_ENV = "BUCKBI_DASK_SCHEDULER"
RESULTS = "sweep.csv"


def run_point(actor: Actor, params: EpisodeParams, scenario: str, simulator: str | None,
              max_step: float | None, timeout: float, settings: dict | None = None) -> dict:
    """One point on a worker: NN (deploy) and teacher, their figures, and any error (never raises)."""
    from ..evaluation.evaluate import evaluate
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="buckbi-sweep-") as tmp:
            table, _, _ = evaluate(actor, [params], tmp, simulator, jobs=2, timeout=timeout, scenario=scenario,
                                   max_step=max_step, settings=settings)
        row = table.iloc[0].to_dict()
        row.pop("point", None)
        errors = [row.get(f"{who}_error") for who in ("nn", "teacher")]
        errors = [e for e in errors if isinstance(e, str)]
        row |= {"status": "failed" if errors else "ok", "error": "; ".join(errors)}
    except Exception as err:  # set-up errors belong to this point too
        row = {"vin": params.vin, "ro": params.ro, "Lo_uH": params.Lo * 1e6, "vref": params.vref,
               "status": "failed", "error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
    row |= {"key": point_key(params), "steps": params.steps, "Lo": params.Lo, "scenario": scenario,
            "worker_s": round(time.perf_counter() - start, 3), "host": os.uname().nodename}
    return row


@dataclass
class SweepResult:
    table: pd.DataFrame
    done_before: int
    ran: int
    failed: int
    wall_s: float


def read_results(path: Path) -> pd.DataFrame:
    """Rows written so far. A line counts only when it is whole: it ends with its newline and has every field of
    the header; anything else (a line cut short by a kill) is dropped, and its point runs again."""
    lines, _ = whole_lines(path)
    if not lines:
        return pd.DataFrame()
    header = next(csv.reader([lines[0]]))
    if "key" not in header:
        raise ValueError(f"{path} is not a buckbi sweep result (no 'key' column); use another --out")
    whole = [ln for ln in lines[1:] if len(next(csv.reader([ln]), [])) == len(header)]
    if not whole:
        return pd.DataFrame(columns=header)
    df = pd.read_csv(io.StringIO("\n".join([lines[0], *whole]) + "\n"))
    return df.dropna(subset=["key"])


class ResultWriter:
    """Appends one whole CSV line per point and syncs it, so a kill -9 loses only points in flight."""

    def __init__(self, path: Path, columns: list[str] | None):
        self.path = path
        self.columns = columns
        cut_torn_tail(path)

    def append(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row)
        extra = [c for c in row if c not in self.columns]
        if extra:
            log.warning("sweep: dropping unexpected result columns %s", extra)
        append_synced(self.path, pd.DataFrame([row], columns=self.columns).to_csv(index=False,
                                                                             header=not self._has_header()))

    def _has_header(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0


def _columns(scenario: str) -> list[str]:
    from ..evaluation.evaluate import figure_names
    figs = figure_names(scenario)
    return (["key", "vin", "vref", "ro", "Lo", "Lo_uH", "steps", "scenario", "status"]
            + [f"{who}_{f}" for who in ("nn", "teacher") for f in figs]
            + ["nn_error", "teacher_error", "error", "attempts", "worker_s", "host"])


def require_runnable(actor: Actor, simulator: str | None) -> None:
    """Refuse before any work: a subcircuit file cannot run on the fast simulator."""
    from ..engines import engine_for
    engine_for(simulator).require_runnable(actor)


def run_sweep(actor: Actor, points: list[EpisodeParams], out: str | Path, client, *, scenario: str = "startup",
              simulator: str | None = None, max_step: float | None = None, timeout: float = 900.0,
              progress: bool = True, settings: dict | None = None) -> SweepResult:
    """Run every point of ``points`` not yet in ``out/sweep.csv`` on the Dask ``client``; returns all results.
    ``settings``: the scenario's (another converter's: ``converter_settings``)."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    require_runnable(actor, simulator)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    before = read_results(path)
    done = set(before["key"]) if len(before) else set()
    todo = {point_key(p): p for p in points if point_key(p) not in done}
    writer = ResultWriter(path, list(before.columns) if len(before) else _columns(scenario))
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="point", disable=not progress, dynamic_ncols=True, desc="sweep")
    failed = 0
    # hash=False: a fresh key per sweep (a content-hashed key can collide with one the scheduler is releasing)
    remote_actor = client.scatter(actor, broadcast=True, hash=False) if todo else None
    futures = {client.submit(run_point, remote_actor, p, scenario, simulator, max_step, timeout, settings,
                             pure=False): (k, 1)
               for k, p in todo.items()}
    pending = as_completed(list(futures))
    try:
        for fut in pending:
            key, attempt = futures.pop(fut)
            row = fut.result() if fut.status == "finished" else {
                "key": key, "status": "failed", "error": (f"Dask: task {fut.status}: {fut.exception()!r}"
                                                          if fut.status == "error" else f"Dask: task {fut.status}")[:300]}
            if row.get("status") != "ok" and attempt == 1:  # a failed simulation runs once more
                retry = client.submit(run_point, remote_actor, todo[key], scenario, simulator, max_step, timeout,
                                      settings, pure=False)
                futures[retry] = (key, 2)
                pending.add(retry)
                continue
            row["attempts"] = attempt
            writer.append(row)
            failed += row.get("status") != "ok"
            bar.update(1)
            bar.set_postfix_str(f"done {bar.n}/{len(todo)}, failed {failed}")
    finally:
        bar.close()
        for fut in futures:
            fut.cancel()
    table = read_results(path)
    return SweepResult(table, len(done), len(todo), failed, time.perf_counter() - start)


@contextmanager
def dask_client(scheduler: str | None = None, jobs: int = 2, dashboard: bool = False):
    """``open_client`` as a context: on exit the client closes, and a local cluster it started shuts down."""
    client = open_client(scheduler, jobs, dashboard)
    try:
        yield client
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def warn_if_plain_remote(address: str) -> bool:
    """Warn (and return True) when ``address`` is a plain tcp:// scheduler on another host: anyone who reaches it can
    run code on its workers."""
    scheme, _, rest = address.rpartition("://")
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    if scheme in ("", "tcp") and host not in LOOPBACK:
        log.warning("the Dask scheduler %s is reached over plain tcp:// on another host: anyone who can reach it can "
                    "run code on its workers; use TLS (tls://, README 'Secured clusters')", address)
        return True
    return False


def open_client(scheduler: str | None = None, jobs: int = 2, dashboard: bool = False):
    """A Dask client: ``scheduler`` (or $BUCKBI_DASK_SCHEDULER), else a local cluster of ``jobs`` worker processes
    (``client.cluster``; close it too, or use ``dask_client``). The local cluster listens on loopback only:
    scheduler and workers on 127.0.0.1, and a dashboard (127.0.0.1, a free port) only with ``dashboard``."""
    from distributed import Client, LocalCluster
    logging.getLogger("distributed").setLevel(logging.ERROR)  # its own start/stop chatter; errors still show
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if address:
        warn_if_plain_remote(address)
        try:
            return Client(address, timeout="15s")
        except OSError as err:
            raise ConnectionError(f"cannot reach the Dask scheduler at {address} ({err}); start one with "
                                  f"'dask scheduler' and workers with 'dask worker {address}', or leave out "
                                  f"--scheduler / ${SCHEDULER_ENV} to run locally") from None
        except RuntimeError as err:  # e.g. "encryption required by Dask configuration" for a tcp:// address
            raise ConnectionError(f"the Dask client refused {address}: {str(err).splitlines()[0]}; with TLS "
                                  "configured (DASK_DISTRIBUTED__COMM__TLS__*) give the scheduler as tls://HOST:PORT") \
                from None
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0" if dashboard else None,
                           silence_logs=logging.ERROR)
    return Client(cluster)


def summary(table: pd.DataFrame) -> str:
    ok = table[table["status"] == "ok"] if len(table) else table
    return f"{len(table)} points, {len(ok)} ok, {len(table) - len(ok)} failed"


__all__ = ["run_point", "run_sweep", "open_client", "dask_client", "read_results", "SweepResult", "SCHEDULER_ENV", "summary"]
