"""The training folder: log.csv and its row schema, checkpoints, per-episode copies; every file written atomically."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..util.fsutil import atomic_write, atomic_write_text

# The seed notebook's columns first (its 'std' stays empty as in the seed), then buckbi's.
SEED_COLUMNS = ["episode", "sim time", "loss_actor", "vin", "ro", "Lo", "vref", "fsw", "std", "steps", "epoch",
                "Vout/Vin", "Iout/Icrit"]
COLUMNS = SEED_COLUMNS + ["gym", "status", "wall_s", "error", "scenario", "noise_mV"]
# --spice-check-every: the fast episode against the same episode in ngspice (worst deviations at the rows)
CHECK_COLUMNS = ["spice_vout_pct_of_vin", "spice_plant_inputs", "spice_duty_inputs", "spice_nn_out",
                 "spice_accumulator"]
NN_STEM, PARAM_STEM = "BUCK_VM_BI_nn", "BUCK_VM_BI_param"  # the seed's file names
# status: ok; failed (its own simulation, or a non-finite loss); spice_mismatch (the SPICE check refused it);
# not_updated (its batch was refused because of another episode: the error names it)
STATUSES = ("ok", "failed", "spice_mismatch", "not_updated")


def log_row(episode: int, params, *, gym: str, stamp: str, scenario: str = "startup", epochs: int, status: str, loss: float, wall_s: float,
            error: str = "", checks: dict[str, float] | None = None) -> dict:
    """One log.csv row: the seed's columns (its 'std' stays empty), then buckbi's, then any SPICE check figures."""
    assert status in STATUSES, status
    return {"episode": episode, "sim time": stamp, "loss_actor": loss if status == "ok" else np.nan,
            "vin": params.vin, "ro": params.ro, "Lo": params.Lo, "vref": params.vref, "fsw": params.fsw, "std": np.nan,
            "steps": params.steps, "epoch": epochs, "Vout/Vin": params.vout_vin, "Iout/Icrit": params.iout_icrit,
            "gym": gym, "status": status, "wall_s": round(wall_s, 3), "error": error, "scenario": scenario,
            "noise_mV": params.noise_mV} | {
        f"spice_{k}": v for k, v in (checks or {}).items()}


class RunDir:
    """Paths and atomic writers of one training folder (the seed's ``gym/``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.sim = self.root / "sim"  # scratch of the running episodes, emptied after each
        self.log_csv = self.root / "log.csv"
        self.final = self.root / "actor_final.pth"
        self.loss_plot = self.root / "loss_plot.html"
        self.episode_plot = self.root / "episode_plot.html"
        self.rows_dir = self.root / "episodes"

    def actor(self, ep: int) -> Path:
        return self.root / f"actor_ep{ep}.pth"

    def nn_file(self, ep: int | None = None) -> Path:
        return self.root / (f"{NN_STEM}_ep{ep}.sp" if ep is not None else f"{NN_STEM}.sp")

    def param_file(self, ep: int | None = None) -> Path:
        return self.root / (f"{PARAM_STEM}_ep{ep}.txt" if ep is not None else f"{PARAM_STEM}.txt")

    def rows(self, ep: int) -> Path:
        return self.rows_dir / f"ep{ep}.csv.gz"

    def read_log(self) -> pd.DataFrame:
        """The log so far (empty with the right columns when there is none)."""
        if not self.log_csv.exists():
            return pd.DataFrame(columns=COLUMNS)
        try:
            log = pd.read_csv(self.log_csv)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.log_csv} cannot be read ({err}); start a new run with --fresh (moves this "
                             "one aside) or another --workdir") from err
        if "episode" not in log:
            raise ValueError(f"{self.log_csv} has no 'episode' column, so it is not a training log; start a new "
                             "run with --fresh (moves this one aside) or another --workdir")
        for col in COLUMNS:
            if col not in log:
                log[col] = "ok" if col == "status" else np.nan  # a seed log: every row was a success
        return log[COLUMNS + [c for c in log.columns if c not in COLUMNS]]

    def write_log(self, log: pd.DataFrame) -> None:
        atomic_write_text(self.log_csv, log.to_csv(index=False))

    def copy(self, src: Path, dst: Path) -> None:
        atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))

    def keep_episode_files(self, ep: int, artefacts: dict[str, Path]) -> None:
        """Per-episode copies of what the engine wrote (exported network, parameter file), plus the latest, as the
        seed keeps them; whatever runner made the episode, its ``Episode.artefacts`` name the files."""
        for key, dst, latest in (("nn", self.nn_file(ep), self.nn_file()),
                                 ("params", self.param_file(ep), self.param_file())):
            src = artefacts.get(key)
            if src is not None and Path(src).exists():
                self.copy(Path(src), dst)
                self.copy(Path(src), latest)

    def write_rows(self, ep: int, rows: pd.DataFrame) -> None:
        """The sampled rows of an episode (``episodes/epN.csv.gz``)."""
        atomic_write(self.rows(ep), lambda tmp: rows.to_csv(tmp, index=False,
                                                            compression={"method": "gzip", "compresslevel": 1}))

    def remove_stale_temporaries(self) -> int:
        """Delete half-written ``.name.*.tmp`` files a kill left behind (their targets are intact)."""
        stale = [*self.root.glob(".*.tmp"), *self.rows_dir.glob(".*.tmp")]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    def archive_previous(self) -> Path | None:
        """Move an earlier run's artefacts into ``previous-<time>/`` (``--fresh`` never deletes)."""
        names = [p for p in self.root.iterdir() if not p.name.startswith("previous-")] if self.root.exists() else []
        if not names:
            return None
        dest = self.root / time.strftime("previous-%Y%m%d-%H%M%S")
        dest.mkdir()
        for p in names:
            shutil.move(str(p), dest / p.name)
        return dest
