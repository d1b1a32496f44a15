"""The episode contract every engine fulfils: a converter's I/O, one sampled episode, and its errors.

The bottom layer: it imports nothing of buckbi. A converter (``buckbi.converters``) says what its controller
reads and writes (``IOContract``); an engine (``buckbi.engines``) runs episodes and hands back ``Episode``s,
built here and only here (``Episode.from_rows``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # rows are DataFrames; pandas loads with the engines, not with the command line's help
    import pandas as pd


class EpisodeError(ValueError):
    """An episode cannot be set up as asked."""


@dataclass(frozen=True)
class IOContract:
    """What the network under test reads and writes, and the clock and label the rows are taken with."""

    inputs: tuple[str, ...]  # node names in the circuit, in the network's input order
    output: str  # the network's output node
    clock: str  # the control clock: rows are taken on its falling edges
    label: str  # the teacher's command (the imitation target)
    vout: str = "out"  # the converter's output node
    duty: str = "duty"  # the applied (held) duty
    sense: str = "vsense"  # what the controller reads of the output voltage (V(out) plus any injection)
    # the teacher's command as the PWM hold takes it, held (in gym 1 the applied duty; in gym 2 what it would apply)
    teacher_duty: str = "tduty"

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @staticmethod
    def column(node: str) -> str:
        """The rows' column of a node: ``V(node)`` in lower case, as SPICE results are named."""
        return f"V({node.lower()})"

    @property
    def input_columns(self) -> list[str]:
        return [self.column(n) for n in self.inputs]

    def instance(self, subckt: str, clocked: bool = False) -> str:
        """The circuit's line that instantiates the network: inputs, (a recurrent network: the clock,) the output."""
        return f"X99 {' '.join(self.inputs)} {self.clock + ' ' if clocked else ''}{self.output} {subckt}"


@dataclass
class Episode:
    """Sampled data of one episode: ``x`` (N x inputs), ``y`` teacher label (None in deploy), ``pred`` the NN output.

    ``artefacts`` names the files the engine wrote for it (the exported network, the parameter file), so
    that whoever runs it (the trainer) can keep them whichever engine or runner made them.
    """

    gym: str
    params: Any
    x: np.ndarray
    y: np.ndarray | None
    pred: np.ndarray | None
    rows: pd.DataFrame
    elapsed_s: float
    waveforms: pd.DataFrame | None = None
    scenario: str = "startup"
    artefacts: dict[str, Path] = field(default_factory=dict)
    settings: dict[str, float] = field(default_factory=dict)  # the scenario's settings it ran with

    @classmethod
    def from_rows(cls, io: IOContract, gym: str, params: Any, rows: pd.DataFrame, elapsed_s: float, *,
                  network: bool, labelled: bool, scenario: str = "startup", waveforms: pd.DataFrame | None = None,
                  artefacts: dict[str, Path] | None = None, settings: dict | None = None) -> "Episode":
        """The one place an Episode is assembled from a gym's sampled rows (any engine)."""
        x = rows[io.input_columns].to_numpy() if network else np.empty((len(rows), 0))
        out = io.column(io.output)
        pred = rows[out].to_numpy() if network and out in rows else None
        y = rows[io.column(io.label)].to_numpy() if labelled else None
        return cls(gym, params, x, y, pred, rows, elapsed_s, waveforms, scenario, dict(artefacts or {}),
                   dict(settings or {}))
