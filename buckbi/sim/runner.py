"""Run netlists through spicelib's SimRunner and return pandas DataFrames."""
from __future__ import annotations

import itertools
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from spicelib import RawRead, SimRunner

from .backend import Backend, excerpt
from .select import get_simulator
from .errors import (MissingTraceError, NonFiniteTraceError, RawFileError, SimulationTimeoutError,
                     SimulatorError)

_counter = itertools.count()
# spicelib logs failed runs at ERROR level; buckbi raises them as exceptions with the log excerpt instead.
logging.getLogger("spicelib").addHandler(logging.NullHandler())


class _ResampledRawFilter(logging.Filter):
    """Drop spicelib's 'raw file not found' error: resampled runs write their raw elsewhere, checked here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Raw file or Log file were not found" not in record.getMessage()


logging.getLogger("spicelib.RunTask").addFilter(_ResampledRawFilter())


@dataclass
class SimJob:
    """One netlist to run: its text (or a file), ``.param`` values, files to ``.include``, traces to read."""

    netlist: str | Path
    params: dict[str, float] = field(default_factory=dict)
    includes: list[str | Path] = field(default_factory=list)
    traces: list[str] | None = None
    name: str = "run"
    # Hand back the traces on the .tran step grid instead of every computed point (ngspice: linearize),
    # which keeps long transients' raw files small; backends that cannot do it return every point.
    resample: bool = False
    # Traces also handed back at every computed point when resampling (SimResult.native): what a figure needs
    # between the grid's points, e.g. the output ripple's extremes at the switching instants.
    native: list[str] = field(default_factory=list)


@dataclass
class SimResult:
    """What one run produced; ``data`` has ``time`` (transient) and ``V(node)`` columns."""

    data: pd.DataFrame
    elapsed_s: float
    log: str
    files: list[Path]
    native: pd.DataFrame | None = None  # SimJob.native at every computed point (None: not asked or not resampled)


def canonical_trace(name: str) -> str:
    """``v(OUT)``/``V(out)`` -> ``V(out)``; ``i(V1)`` -> ``I(v1)``; the axis stays ``time``."""
    m = re.fullmatch(r"\s*([vViI])\((.*)\)\s*", name)
    if m:
        return f"{m.group(1).upper()}({m.group(2).lower()})"
    return name.lower()


_INCLUDE = re.compile(r'^(\.(?:include|inc|lib)\s+)"?([^"\s]+)"?(.*)$', re.IGNORECASE | re.MULTILINE)


def _anchored(m: re.Match, base: Path) -> str:
    path = Path(m.group(2))
    return m.group(0) if path.is_absolute() else f'{m.group(1)}"{base / path}"{m.group(3)}'


def compose(job: SimJob) -> str:
    """Netlist text with ``.param`` and ``.include`` lines placed right after the title line."""
    text = Path(job.netlist).read_text() if isinstance(job.netlist, Path) else job.netlist
    if isinstance(job.netlist, Path):  # the copy runs elsewhere: anchor relative includes at the source
        text = _INCLUDE.sub(lambda m: _anchored(m, Path(job.netlist).resolve().parent), text)
    title, _, body = text.partition("\n")
    extra = [f".param {k}={v!r}" if isinstance(v, float) else f".param {k}={v}" for k, v in job.params.items()]
    extra += [f'.include "{Path(p).resolve()}"' for p in job.includes]
    return "\n".join([title, *extra, body]) if extra else text


def run_netlist(job: SimJob | str | Path, workdir: str | Path, *, simulator: str | Backend | None = None,
                timeout: float = 600.0, keep_files: bool = False) -> SimResult:
    """Run one netlist and return its traces; raises a specific ``SimulatorError`` on failure."""
    result = run_netlists([job], workdir, simulator=simulator, timeout=timeout, keep_files=keep_files)[0]
    if isinstance(result, Exception):
        raise result
    return result


def run_netlists(jobs: list[SimJob | str | Path], workdir: str | Path, *, simulator: str | Backend | None = None,
                 timeout: float = 600.0, keep_files: bool = False,
                 parallel: int | None = None) -> list[SimResult | SimulatorError]:
    """Run several netlists at once (``parallel`` processes); each entry is a result or its error."""
    backend = get_simulator(simulator)
    backend.ensure_available()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    jobs = [j if isinstance(j, SimJob) else SimJob(netlist=j) for j in jobs]
    runner = SimRunner(simulator=backend.spicelib_simulator(), output_folder=workdir,
                       parallel_sims=parallel or max(1, min(len(jobs), os.cpu_count() or 1)), timeout=timeout)
    tasks, sources, grid_raws = [], [], []
    for job in jobs:
        # A unique name per run keeps parallel runs (also from other processes) apart.
        stem = f"{job.name}_{os.getpid()}_{next(_counter)}"
        path = workdir / f"{stem}.cir"
        text = compose(job)
        grid_raw = workdir / f"{stem}.grid.raw"
        native_raw = workdir / f"{stem}.native.raw" if job.native else None
        control = backend.resample_control(grid_raw, native_raw, job.native) if job.resample else None
        if control:
            text = _before_end(text, control)
        path.write_text(text)
        tasks.append(runner.run(path, switches=backend.switches(), timeout=timeout, exe_log=True))
        sources.append(path)
        grid_raws.append((grid_raw, native_raw) if control else None)
    for task in tasks:  # join directly: SimRunner.wait_completion() polls once per second
        task.join(timeout + 10)
    runner.update_completed()
    for path in sources:  # SimRunner ran its own numbered copy
        path.unlink(missing_ok=True)
    results = []
    for job, task, grid_raw in zip(jobs, tasks, grid_raws):
        try:
            results.append(_collect(backend, job, task, timeout, grid_raw))
        except SimulatorError as err:
            results.append(err)
    if not keep_files:
        runner.cleanup_files()
        for task, grid_raw in zip(tasks, grid_raws):
            for suffix in (".fail", ".exe.log", ".cir"):
                task.netlist_file.with_suffix(suffix).unlink(missing_ok=True)
            for path in grid_raw or ():
                if path is not None:
                    path.unlink(missing_ok=True)
    return results


def _read_log(task) -> str:
    parts = []
    for p in (task.log_file, task.netlist_file.with_suffix(".fail"), task.netlist_file.with_suffix(".exe.log")):
        if p is not None and Path(p).exists():
            parts.append(Path(p).read_text(errors="replace"))
    return "\n".join(parts)


def _before_end(text: str, block: str) -> str:
    """Insert ``block`` before the netlist's final ``.end`` (or append it)."""
    m = list(re.finditer(r"^\.end\s*$", text, re.IGNORECASE | re.MULTILINE))
    if not m:
        return text.rstrip("\n") + "\n" + block + "\n"
    return text[:m[-1].start()] + block + "\n" + text[m[-1].start():]


def _collect(backend: Backend, job: SimJob, task, timeout: float, raws: tuple[Path, Path | None] | None) -> SimResult:
    log = _read_log(task)
    elapsed = (task.stop_time or time.time()) - (task.start_time or time.time())
    if task.exception_text and "TimeoutExpired" in task.exception_text:
        raise SimulationTimeoutError(
            f"{backend.name} ran past the {timeout:g} s timeout on {task.netlist_file.name} and was stopped; "
            "raise the timeout or shorten the run.", excerpt(log))
    backend.check_log(log, task.retcode)
    if task.retcode != 0:
        raise SimulatorError(f"{backend.name} failed on {task.netlist_file.name} "
                             f"(exit code {task.retcode}{', ' + task.exception_text if task.exception_text else ''}).",
                             excerpt(log))
    grid_raw, native_raw = raws or (None, None)
    raw = grid_raw or task.netlist_file.with_suffix(".raw")
    if not raw.exists() or raw.stat().st_size == 0:
        raise RawFileError(f"{backend.name} wrote no raw file for {task.netlist_file.name}.", excerpt(log))
    data = read_raw(raw, backend.raw_dialect, job.traces)
    native = read_raw(native_raw, backend.raw_dialect, job.native) if native_raw is not None else None
    return SimResult(data=data, elapsed_s=elapsed, log=log,
                     files=[task.netlist_file, raw, task.netlist_file.with_suffix(".log")], native=native)


def read_raw(raw: str | Path, dialect: str | None = "ngspice", traces: list[str] | None = None) -> pd.DataFrame:
    """Read a raw file into a DataFrame with canonical names; check requested traces and finiteness."""
    try:
        rr = RawRead(str(raw), dialect=dialect, verbose=False)
        names = rr.get_trace_names()
        wanted = names
        if traces is not None:
            by_canon = {canonical_trace(n): n for n in names}
            missing = [t for t in traces if canonical_trace(t) not in by_canon]
            if missing:
                raise MissingTraceError(
                    f"traces {missing} are not in {Path(raw).name}; it has {sorted(by_canon)[:40]}. "
                    "Add them to the netlist's .save line.")
            axis = [n for n in names[:1] if n.lower() in ("time", "frequency")]
            wanted = axis + [by_canon[canonical_trace(t)] for t in traces]
        cols = {}
        for n in wanted:
            values = rr.get_trace(n).get_wave(0)
            cols[canonical_trace(n)] = np.abs(values) if n.lower() == "time" else np.real(values)
        df = pd.DataFrame(cols)
    except MissingTraceError:
        raise
    except Exception as err:  # spicelib raises several types for truncated or garbled files
        raise RawFileError(f"cannot read raw file {raw}: {type(err).__name__}: {err}. "
                           "It is missing, truncated or corrupt; run the simulation again.") from err
    if df.empty:
        raise RawFileError(f"raw file {raw} holds no data points.")
    values = df.to_numpy(dtype=float)
    bad = [c for c, ok in zip(df.columns, np.isfinite(values).all(axis=0)) if not ok]
    if bad:
        raise NonFiniteTraceError(f"traces {bad[:10]} hold NaN or infinite values; the simulation diverged.")
    return df
