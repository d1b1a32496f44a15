"""Golden exported networks: a folder per network with its weights and what exporting and simulating gave."""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from ..nn.checkpoint import load_checkpoint
from ..converters.buck.spec import IO, SUBCKT, EpisodeParams
from ..episodes.run import run_episode
from ..export import export_model
from ..export.verify import spice_forward
from ..util.fsutil import atomic_write_text

NETLIST_DIALECTS = ("ngspice", "ltspice")
FORWARD_TOL = 1e-9  # .op outputs on fixed inputs: the same exporter and simulator give the same numbers
NN_TOL = 1e-6  # NNout1 along the golden episode
PLANT_TOL = 1e-3  # V(out)/vmax and nnpwm along the golden episode (solver details may move them slightly)
EPISODE = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=64)


class GoldenMismatch(AssertionError):
    """A re-export or re-simulation drifted from the golden files."""


class GoldenNetwork:
    """``<dir>/actor.pth`` plus expected files: ``actor_<dialect>.sp``, ``inputs.csv``, ``outputs.csv``,
    ``episode.csv``. Missing expected files are a failure unless --buckbi-update-golden writes them."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.name

    def model(self) -> nn.Module:
        model, _ = load_checkpoint(self.path / "actor.pth")
        return model.eval()

    def _expected(self, name: str, update: bool) -> Path:
        path = self.path / name
        if not path.exists() and not update:
            raise GoldenMismatch(f"{self.name}: {path} is missing; record it with pytest -m nightly --buckbi-update-golden")
        return path

    def check_netlist(self, dialect: str, update: bool) -> None:
        """Re-export and compare the text line by line (a unified diff on mismatch)."""
        text = export_model(self.model(), subckt_name=SUBCKT, dialect=dialect, input_names=list(IO.inputs),
                            output_names=["NNout1"])
        path = self._expected(f"actor_{dialect}.sp", update)
        if update:
            atomic_write_text(path, text)
            return
        expected = path.read_text()
        if text != expected:
            diff = "".join(list(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                                     f"golden/{path.name}", "re-exported", n=1))[:60])
            raise GoldenMismatch(f"{self.name}: the {dialect} netlist changed:\n{diff}")

    def fixed_inputs(self, update: bool) -> np.ndarray:
        """16 input vectors over the inputs' working ranges (recorded once with --buckbi-update-golden)."""
        path = self._expected("inputs.csv", update)
        if not path.exists():
            rng = np.random.default_rng(0)
            xs = rng.uniform(-0.3, 1.0, size=(16, IO.n_inputs))
            atomic_write_text(path, pd.DataFrame(xs, columns=list(IO.inputs)).to_csv(index=False, float_format="%.17g"))
        return pd.read_csv(path)[list(IO.inputs)].to_numpy()

    def check_fixed_inputs(self, simulator, update: bool) -> None:
        """One .op with the network on each fixed input vector, against outputs.csv."""
        path = self._expected("outputs.csv", update)
        xs = self.fixed_inputs(update)
        got = spice_forward(self.model(), xs, simulator=simulator)[:, 0]
        if update:
            atomic_write_text(path, pd.DataFrame({"NNout1": got}).to_csv(index=False, float_format="%.17g"))
            return
        expected = pd.read_csv(path)["NNout1"].to_numpy()
        _compare(self.name, "outputs on fixed inputs", expected, got, FORWARD_TOL)

    def check_episode(self, simulator, workdir: Path, update: bool) -> None:
        """A short fixed gym-1 episode: NNout1, Vout and the label per sampled row, against episode.csv."""
        path = self._expected("episode.csv", update)
        ep = run_episode("gym1", self.model(), EPISODE, workdir, simulator)
        got = pd.DataFrame({"NNout1": ep.pred, "Vout_per_vmax": ep.rows["V(out)"] / EPISODE.vmax, "nnpwm": ep.y})
        if update:
            atomic_write_text(path, got.to_csv(index=False, float_format="%.17g"))
            atomic_write_text(self.path / "episode.json", json.dumps(EPISODE.spice_params(), indent=1) + "\n")
            return
        expected = pd.read_csv(path)
        if len(expected) != len(got):
            raise GoldenMismatch(f"{self.name}: the episode gave {len(got)} rows, golden has {len(expected)}")
        for col, tol in (("NNout1", NN_TOL), ("Vout_per_vmax", PLANT_TOL), ("nnpwm", PLANT_TOL)):
            _compare(self.name, f"episode {col}", expected[col].to_numpy(), got[col].to_numpy(), tol)


def _compare(name: str, what: str, expected: np.ndarray, got: np.ndarray, tol: float) -> None:
    err = np.abs(np.asarray(got) - np.asarray(expected))
    if not np.all(err <= tol):
        worst = np.argsort(-err)[:5]
        table = "\n".join(f"  row {i:4d}: golden {expected[i]:.12g}  now {got[i]:.12g}  |diff| {err[i]:.3g}"
                          for i in worst)
        raise GoldenMismatch(f"{name}: {what} drifted beyond {tol:g} in {np.sum(err > tol)} of {len(err)} "
                             f"rows; worst:\n{table}\n(rewrite on purpose with --buckbi-update-golden)")
