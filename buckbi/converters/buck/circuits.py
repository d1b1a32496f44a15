"""Where the buck's circuits are: package data in an installed buckbi, the repository's ``circuits/`` in a checkout.

The wheel maps the repository's top-level ``circuits/`` folder to ``buckbi/circuits`` (pyproject.toml), so the
same files serve an editable checkout and ``pip install .``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ...contract import EpisodeError

_PACKAGE = Path(__file__).resolve().parents[2]  # .../buckbi


@lru_cache(maxsize=None)
def circuits_dir() -> Path:
    """The folder holding the gym circuits and ``parts/``."""
    for candidate in (_PACKAGE / "circuits", _PACKAGE.parent / "circuits"):
        if (candidate / "parts" / "buck.inc").is_file():
            return candidate
    raise FileNotFoundError(f"buckbi's circuits are missing (looked in {_PACKAGE / 'circuits'} and "
                            f"{_PACKAGE.parent / 'circuits'}); reinstall buckbi (pip install buckbi) or run from "
                            "its repository")


def circuit_file(gym: str) -> Path:
    """The closed-loop circuit of ``gym`` (without the scenario's parts)."""
    path = circuits_dir() / f"{gym}.cir"
    if not path.is_file():
        raise EpisodeError(f"no circuit for gym {gym!r} ({path})")
    return path


def part_file(name: str) -> Path:
    """A part of ``circuits/parts`` (a load, an input source, a reference profile, the buck itself)."""
    path = circuits_dir() / "parts" / name
    if not path.is_file():
        raise EpisodeError(f"circuit part {name!r} is missing ({path})")
    return path
