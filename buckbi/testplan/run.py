"""Run a test plan: every test at every corner for the NN and the teacher, resumable and loss-free.

Each finished cell is one whole JSON line of ``DIR/cells.jsonl`` (synced); its plot trace is written before it.
A line counts only when it is whole and parses; a kill leaves at most a torn tail, dropped, and that cell runs
again. A cell whose definition changed (scenario, settings, corner, network, simulator: ``cell_definition``) runs
again; the others are kept. Limits are not part of a cell: verdicts are taken from the stored figures each time.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..util.fsutil import append_synced, atomic_write_text, cut_torn_tail, whole_lines
from ..engines import is_fast
from .cells import actor_id, run_cells
from .plan import CONTROLLERS, Corner, Plan, PlanError, Test, cell_definition, cell_hash, draw_parts

log = logging.getLogger("buckbi.testplan")
CELLS = "cells.jsonl"
FIELDS = ("hash", "test", "corner", "controller", "figures", "error", "elapsed_s", "draw", "parts")


@dataclass(frozen=True)
class PlanCell:
    test: Test
    corner: Corner
    controller: str
    hash: str
    draw: int = 0  # 1..N: a tolerance draw (0: nominal parts)
    parts: dict | None = None

    @property
    def line(self) -> str:
        return f"{self.test.name}[{self.corner.name}]"

    @property
    def id(self) -> str:
        return self.line + (f"#{self.draw}" if self.draw else "")


def plan_cells(plan: Plan, actor, simulator_name: str, only: str | None = None) -> list[PlanCell]:
    """Every cell of the plan (or of ``only``: ``TEST``, ``TEST[CORNER]`` or ``TEST[CORNER]#DRAW``), NN first then
    teacher, per test, corner and tolerance draw."""
    ident = actor_id(actor)
    cells = []
    for t, c in plan.cells():
        for k, parts in enumerate(draw_parts(t, c), 1 if t.variation else 0):
            for who in CONTROLLERS:
                cells.append(PlanCell(t, c, who, cell_hash(cell_definition(t, c, who, ident, simulator_name, parts)),
                                      k, parts or None))
    if only:
        picked = [x for x in cells if only in (x.id, x.line, x.test.name)]
        if not picked:
            ids = ", ".join(list(dict.fromkeys(x.line for x in cells))[:40])
            raise PlanError(f"--only {only}: no such test or cell (cells: {ids})")
        cells = picked
    return cells


def read_cells(path: Path) -> dict[str, dict]:
    """The whole, parsable lines of ``cells.jsonl`` by cell hash (a torn or foreign line is left out)."""
    lines, _ = whole_lines(path)
    out = {}
    for ln in lines:
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict) and all(k in rec for k in FIELDS):
            out[rec["hash"]] = rec
    return out


class CellWriter:
    """Appends one whole synced JSON line per finished cell (a torn tail from a kill is cut first)."""

    def __init__(self, out: Path):
        self.path = out / CELLS
        self.traces = out / "traces"
        self.traces.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(self.path)

    def append(self, cell: PlanCell, result: dict) -> dict:
        trace = result.pop("trace", {})
        atomic_write_text(self.traces / f"{cell.hash}.json", json.dumps(trace))
        rec = {"hash": cell.hash, "test": cell.test.name, "corner": cell.corner.name, "controller": cell.controller,
               "figures": result.get("figures") or {}, "error": result.get("error") or "",
               "elapsed_s": result.get("elapsed_s"), "draw": cell.draw, "parts": cell.parts or {}}
        append_synced(self.path, json.dumps(rec, allow_nan=True) + "\n")
        return rec


BATCH = 50  # tolerance draws per task on the fast simulator (one kernel call each)


def task_groups(cells: list[PlanCell], fast: bool) -> list[list[PlanCell]]:
    """One task per cell; on the fast simulator a transient tolerance test's draws at a corner go BATCH at a time."""
    groups: dict[tuple, list[PlanCell]] = {}
    out = []
    for c in cells:
        if fast and c.draw and c.test.scenario != "fra":
            groups.setdefault((c.test.name, c.corner.name, c.controller), []).append(c)
        else:
            out.append([c])
    for g in groups.values():
        out += [g[i:i + BATCH] for i in range(0, len(g), BATCH)]
    return out


@dataclass
class PlanRun:
    records: dict[str, dict]  # by cell hash, this plan's cells only
    cells: list[PlanCell]
    done_before: int
    ran: int
    wall_s: float


def run_plan(plan: Plan, actor, out: str | Path, client, *, simulator=None, simulator_name: str = "",
             timeout: float = 900.0, max_step: float | None = None, only: str | None = None,
             progress: bool = True) -> PlanRun:
    """Run the plan's cells not yet in ``out/cells.jsonl`` on the Dask ``client``."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = plan_cells(plan, actor, simulator_name or str(simulator), only)
    before = read_cells(out / CELLS)
    todo = [c for c in cells if c.hash not in before]
    writer = CellWriter(out)
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="cell", disable=not progress, dynamic_ncols=True, desc="testplan")
    remote = client.scatter(actor, broadcast=True, hash=False) if todo and actor is not None else actor
    futures = {client.submit(run_cells, remote if g[0].controller == "nn" else None, g[0].test, g[0].corner,
                             g[0].controller, simulator, timeout, max_step, [c.parts for c in g], pure=False): g
               for g in task_groups(todo, is_fast(simulator))}
    records = dict(before)
    try:
        for fut in as_completed(list(futures)):
            group = futures.pop(fut)
            if fut.status == "finished":
                results = fut.result()
            else:
                results = [{"figures": {}, "error": f"Dask: task {fut.status}", "elapsed_s": 0.0}] * len(group)
            for cell, result in zip(group, results):
                records[cell.hash] = writer.append(cell, dict(result))
            bar.update(len(group))
    finally:
        bar.close()
        for fut in futures:
            fut.cancel()
    mine = {c.hash: records[c.hash] for c in cells if c.hash in records}
    return PlanRun(mine, cells, len(cells) - len(todo), len(todo), time.perf_counter() - start)
