"""Atomic file writes and line-by-line result files: a crash mid-write never leaves half a file (or line) behind."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Callable


class OutputPathError(ValueError):
    """An output path that buckbi will not replace: a device, FIFO or socket, or one below a regular file."""


def writable_target(path: str | os.PathLike) -> Path:
    """The regular file a write to ``path`` replaces: a symlink's final target (written through, the link kept);
    a device, FIFO, socket or folder is refused, never replaced; the folders above are made."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        kind = ("a folder" if path.is_dir() else "a FIFO" if stat.S_ISFIFO(path.stat().st_mode) else
                "a device" if stat.S_ISCHR(path.stat().st_mode) or stat.S_ISBLK(path.stat().st_mode) else
                "a special file")
        raise OutputPathError(f"{path} is {kind}, not a regular file: buckbi writes its outputs only to files "
                              "(never replacing anything else); give a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"cannot write {path}: {parent} is a file, not a folder; choose another path")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (same folder, fsynced): a crash or a
    full disk mid-write leaves the old file as it was. A symlink is written through to its target."""
    path = writable_target(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def whole_lines(path: Path) -> tuple[list[str], int]:
    """The file's lines that end with their newline, and the byte length they take (a torn tail is left out)."""
    data = path.read_bytes() if path.exists() else b""
    end = data.rfind(b"\n") + 1
    return data[:end].decode("utf-8", errors="replace").splitlines(), end


def cut_torn_tail(path: Path) -> None:
    """Cut a last line a kill left without its newline, so that appends start a new line."""
    _, end = whole_lines(path)
    if path.exists() and path.stat().st_size > end:
        with open(path, "r+b") as fh:
            fh.truncate(end)


def append_synced(path: Path, text: str) -> None:
    """Append ``text`` (whole lines) and fsync it: a kill -9 loses only what was not appended yet."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
