"""Build a costly fixture once per test session, whatever the number of xdist workers (a file lock in the
session's shared temporary root; the first worker builds, the others wait and reuse)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from filelock import FileLock


def build_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` once per session into a folder shared by all workers; returns the folder."""
    root = tmp_path_factory.getbasetemp()
    if root.name.startswith("popen-gw"):  # an xdist worker: its parent is the session's root
        root = root.parent
    folder = root / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        done = folder / ".done"
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            build(folder)
            done.write_text("ok")
    return folder
