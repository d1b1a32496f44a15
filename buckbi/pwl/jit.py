"""numba's ``njit`` for the fast simulator, its compiled code cached per version of the sources it is built from.

numba keys a cached function by its own file only: a kernel in kernel.py that calls ``advance`` from propagate.py,
or reads a constant of model.py, would keep running the old code after either changes. So every kernel function is
cached in a folder named after a hash of all those sources (and numba's version).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
from numba import njit

_HERE = Path(__file__).resolve().parent
SOURCES = (_HERE / "kernel.py", _HERE / "propagate.py", _HERE / "network.py", _HERE / "model.py",
           _HERE / "jit.py", _HERE.parent / "nn" / "activations.py")
CACHE_ENV = "BUCKBI_NUMBA_CACHE"  # where the compiled kernels go (default: ~/.cache/buckbi/numba)


def cache_dir() -> Path | None:
    """The folder for this version of the kernels (created), or None when none can be written."""
    h = hashlib.sha256(numba.__version__.encode())
    for p in SOURCES:
        h.update(p.read_bytes())
    try:
        base = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
            / "buckbi" / "numba"
        path = Path(base) / h.hexdigest()[:16]
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # no home, or not writable: compile without a cache
        return None
    return path if os.access(path, os.W_OK) else None


_DIR = cache_dir()


def kernel(fn=None, **options):
    """``numba.njit(cache=True, **options)`` with the cache in ``cache_dir()`` (no cache when it cannot be written)."""
    def wrap(f):
        if _DIR is None:
            return njit(**options)(f)
        before = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = str(_DIR)  # read once, when the dispatcher sets up its cache
        try:
            return njit(cache=True, **options)(f)
        finally:
            numba.config.CACHE_DIR = before
    return wrap(fn) if fn is not None else wrap
