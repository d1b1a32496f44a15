"""Operating points of a sweep: a grid over vin x vref x load (or random draws), each with a stable key."""
from __future__ import annotations

import itertools
import re

import numpy as np

from ..contract import EpisodeError
from ..converters.buck.converter import Converter, reference
from ..converters.buck.spec import AXES, EpisodeParams

SWEEP_STREAM = 0x5EE9  # keeps random sweep draws apart from training and evaluate draws
_AXIS = re.compile(r"^\s*(\w+)\s*=\s*([^:]+?)(?::([^:]+?):(\d+))?\s*$")


class GridError(ValueError):
    """A --grid specification that cannot be read."""


def parse_grid(spec: str) -> dict[str, np.ndarray]:
    """``"vin=150:250:11,vref=50:150:11,ro=5:80:3,Lo=50e-6"``: start:stop:count per axis, or one fixed value."""
    axes: dict[str, np.ndarray] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = _AXIS.match(part)
        if not m:
            raise GridError(f"cannot read {part!r} in --grid: write AXIS=START:STOP:COUNT or AXIS=VALUE "
                            f"(axes {', '.join(AXES)})")
        name, start, stop, count = m.groups()
        key = next((a for a in AXES if a.lower() == name.lower()), None)
        if key is None:
            raise GridError(f"unknown axis {name!r} in --grid; axes are {', '.join(AXES)}")
        if key in axes:
            raise GridError(f"axis {key} is given twice in --grid")
        try:
            values = (np.linspace(float(start), float(stop), int(count)) if stop is not None
                      else np.array([float(start)]))
        except ValueError:
            raise GridError(f"cannot read the numbers of {part!r} in --grid") from None
        if len(values) == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise GridError(f"{part!r} in --grid must give at least one positive value")
        axes[key] = values
    if not axes:
        raise GridError("--grid is empty; e.g. --grid \"vin=150:250:11,vref=50:150:11,ro=5:80:3\"")
    return axes


def grid_points(axes: dict[str, np.ndarray], steps: int, conv: Converter | None = None) -> tuple[list[EpisodeParams], int]:
    """Every combination (axes not given at the converter's nominal point); returns the points and how many were not
    a buck."""
    conv = conv or reference()
    names = list(AXES)
    values = [axes.get(a, np.array([conv.nominal[a]])) for a in names]
    points, invalid = [], 0
    for combo in itertools.product(*values):
        try:
            points.append(conv.params(**{n: float(v) for n, v in zip(names, combo)}, steps=steps))
        except EpisodeError:  # vref >= vin: a buck cannot get there
            invalid += 1
    return points, invalid


def default_grid(conv: Converter | None = None) -> str:
    """The --grid a sweep runs without one: 5 x 5 over vin and vref, 3 loads, over the converter's ranges."""
    r = (conv or reference()).ranges
    return ",".join(f"{k}={r[k][0]:g}:{r[k][1]:g}:{n}" for k, n in (("vin", 5), ("vref", 5), ("ro", 3)))


def random_points(n: int, seed: int, steps: int, conv: Converter | None = None) -> list[EpisodeParams]:
    """``n`` draws from the converter's ranges (the reference's: the seed's), apart from training's and evaluate's."""
    conv = conv or reference()
    return [conv.random_point(np.random.default_rng([seed, SWEEP_STREAM, k]), steps=steps) for k in range(n)]


def point_key(p: EpisodeParams) -> str:
    """A stable text key of a point (what resuming matches on); another converter's points carry its name and a hash
    of its values, so a sweep resumed with another file runs again."""
    key = f"vin={p.vin:.6g};vref={p.vref:.6g};ro={p.ro:.6g};Lo={p.Lo:.6g};steps={p.steps}"
    if p.converter != reference().name:
        import hashlib
        key += f";converter={p.converter}-{hashlib.sha1(repr(p.stage_key()).encode()).hexdigest()[:8]}"
    return key
