"""Training orchestration as in the seed notebook: run a batch of episodes, hand them to the learner, run the checks,
commit (log row, then checkpoint). The learner (behaviour imitation by default), the checks and the run folder's
schema live beside it (``learners``, ``checks``, ``artefacts``)."""
from __future__ import annotations

import logging
import secrets
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..nn.checkpoint import CheckpointError, check_actor_shape, load_checkpoint, save_checkpoint, seed_actor
from ..contract import Episode
from ..converters.buck.spec import EpisodeParams
from ..episodes.run import run_episodes
from .artefacts import CHECK_COLUMNS, COLUMNS, RunDir, log_row
from .checks import SpiceCheck
from .config import TrainConfig
from .learners import Learner, bi_update, behaviour_imitation
from ..util.html import write_html
from .plots import episode_figure, loss_figure, loss_header
from .schedule import gym_for_episode, parse_schedule, schedule_length

log = logging.getLogger("buckbi.train")
EpisodeRunner = Callable[..., list]  # run_episodes' signature; a Dask-backed runner can stand in


class TrainingStopped(RuntimeError):
    """Training gave up (too many consecutive failed episodes)."""


class Trainer:
    """One training folder: resumes where its last committed episode ended."""

    def __init__(self, config: TrainConfig):
        self.cfg = config
        _validate(config)  # before anything is written
        self.dir = RunDir(config.workdir)
        self.stages = parse_schedule(config.schedule)
        self.dir.root.mkdir(parents=True, exist_ok=True)
        self.dir.remove_stale_temporaries()
        if config.fresh:
            moved = self.dir.archive_previous()
            if moved:
                log.warning("--fresh: moved the previous run to %s", moved)
        self.actor, self.learner, self.seed, done = self._restore()
        self.runner = config.runner or run_episodes
        self.check = (SpiceCheck(config.check_every, self.runner, config.spice_simulator, config.spice_max_step,
                                 config.timeout) if config.check_every else None)
        self.log = self.dir.read_log()
        if config.start_episode is not None:
            done = config.start_episode - 1  # the seed's train_loop(base_ep, ...): drop rows >= base_ep
        # Rows past the last committed checkpoint belong to an episode killed while committing: redo it.
        self.log = self.log[self.log["episode"] <= done].reset_index(drop=True)
        self.next_episode = done + 1
        self.failures = 0  # consecutive failed episodes

    def _restore(self) -> tuple[nn.Module, Learner, int, int]:
        cfg = self.cfg
        meta: dict = {}
        if self.dir.final.exists():
            actor, meta = load_checkpoint(self.dir.final)  # CheckpointError names the file and the way out
            if cfg.init is not None and meta.get("init") != str(Path(cfg.init).resolve()):
                raise CheckpointError(
                    f"--init {cfg.init} starts a new run, but {self.dir.root} already holds another "
                    f"({self.dir.final.name}); add --fresh to move it aside, or give another --workdir")
            log.info("loaded %s", self.dir.final)
        else:
            seed = cfg.seed if cfg.seed is not None else secrets.randbelow(2**31)
            torch.manual_seed(seed)
            if cfg.init is not None:
                actor, _ = load_checkpoint(cfg.init, arch=cfg.arch, trust_pickle=cfg.trust_pickle)
                check_actor_shape(actor, cfg.init)
                log.info("starting from %s", cfg.init)
            else:
                actor = seed_actor()
            meta = {"seed": seed, "episode": 0, "init": str(Path(cfg.init).resolve()) if cfg.init else None}
        self.init_source = meta.get("init")
        learner = (cfg.learner or behaviour_imitation)(actor, cfg)
        if "optimizer" in meta:
            learner.load_state_dict(meta["optimizer"])
        seed = int(meta.get("seed", cfg.seed if cfg.seed is not None else 0))
        if cfg.seed is not None and cfg.seed != seed and self.dir.final.exists():
            log.warning("resuming a run started with --seed %d; keeping it (use --fresh for seed %d)", seed, cfg.seed)
        done = int(meta["episode"]) if "episode" in meta else self._last_logged()
        return actor.eval(), learner, seed, done

    def _last_logged(self) -> int:
        logged = self.dir.read_log()
        return int(logged["episode"].max()) if len(logged) else 0

    def params_for(self, episode: int) -> EpisodeParams:
        """Episode parameters drawn from (seed, episode): the same draw on a resumed run."""
        return EpisodeParams.random(np.random.default_rng([self.seed, episode]), steps=self.cfg.steps)

    def gym_for(self, episode: int) -> str:
        return self.cfg.gym or gym_for_episode(self.stages, episode)

    def planned(self) -> list[int]:
        """Episode numbers this invocation runs."""
        count = self.cfg.episodes
        if count is None:
            count = max(0, schedule_length(self.stages) - self.next_episode + 1)
        return list(range(self.next_episode, self.next_episode + count))

    def batches(self, planned: list[int]) -> list[list[int]]:
        """Up to ``jobs`` consecutive episodes of one gym per batch (they share one actor update)."""
        out: list[list[int]] = []
        for ep in planned:
            if out and len(out[-1]) < self.cfg.jobs and self.gym_for(out[-1][0]) == self.gym_for(ep):
                out[-1].append(ep)
            else:
                out.append([ep])
        return out

    def run(self) -> pd.DataFrame:
        """Run the planned episodes in batches of ``jobs``; returns the log."""
        planned = self.planned()
        if not planned:
            log.warning("nothing to run: the schedule %s ends at episode %d (use --episodes N to go on)",
                        self.cfg.schedule, schedule_length(self.stages))
            return self.log
        bar = _progress(len(planned), self.cfg.progress)
        try:
            for batch in self.batches(planned):
                self.run_batch(batch, bar)
                if self.failures >= self.cfg.max_failures:
                    last = self.log.iloc[-1]
                    raise TrainingStopped(
                        f"{self.failures} consecutive episodes failed (last: episode {int(last['episode'])}, "
                        f"{last['error']}). Check the simulator set-up (./buckbi.sh test -m ltspice) before "
                        f"training on; the log and checkpoints up to episode {self.next_episode - 1} are kept.")
        finally:
            bar.close()
        return self.log

    def run_batch(self, batch: list[int], bar=None) -> tuple[pd.DataFrame, list]:
        """Simulate ``batch`` (one gym), update the actor on the joined data, commit; returns rows and results."""
        gym = self.gym_for(batch[0])
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        params = [self.params_for(ep) for ep in batch]
        for ep in batch:  # the actor as it enters the episode, as the seed saves it
            save_checkpoint(self.dir.actor(ep), self.actor, episode=ep - 1, seed=self.seed)
        t0 = time.perf_counter()
        step = {"max_step": self.cfg.max_step} if self.cfg.max_step is not None else {}
        results = self.runner(gym, self.actor, params, self.dir.sim, self.cfg.simulator,
                                  parallel=len(batch), timeout=self.cfg.timeout, **step)
        wall = time.perf_counter() - t0
        for ep, r in zip(batch, results):
            if isinstance(r, Episode):
                self.dir.keep_episode_files(ep, r.artefacts)
        shutil.rmtree(self.dir.sim, ignore_errors=True)
        checks = self.check(gym, self.actor, batch, params, results, self.dir.root) if self.check else {}
        mismatch = {ep: c.violations for ep, c in checks.items() if c.violations}
        good = [(ep, r) for ep, r in zip(batch, results) if isinstance(r, Episode)] if not mismatch else []
        loss = self.learner.update([r for _, r in good]) if good else float("nan")
        rows = []
        for ep, p, r in zip(batch, params, results):
            status, error = self._verdict(ep, r, loss, mismatch)
            rows.append(log_row(ep, p, gym=gym, stamp=stamp, epochs=self.cfg.epochs, status=status, loss=loss,
                                wall_s=wall, error=error, checks=checks[ep].deviations if ep in checks else None))
            if status == "ok":
                self.dir.write_rows(ep, r.rows)
            self.failures = 0 if status == "ok" else self.failures + 1
            _report(bar, ep, gym, loss if status == "ok" else None, error)
        rows = pd.DataFrame(rows, columns=COLUMNS + (CHECK_COLUMNS if self.cfg.check_every else []))
        if mismatch:
            # Log what was measured, keep the checkpoint of the last good episode: a resume redoes this batch.
            self.log = pd.concat([self.log, rows], ignore_index=True) if len(self.log) else rows
            self.dir.write_log(self.log)
            ep = next(iter(mismatch))
            raise TrainingStopped(
                f"episode {ep}: the fast simulator and {self.cfg.spice_simulator} disagree beyond the tolerance "
                f"({'; '.join(mismatch[ep])}). The actor was not updated; checkpoints up to episode "
                f"{self.next_episode - 1} are intact. Train this point in SPICE (--simulator ngspice) or report it "
                f"with {self.dir.log_csv}.")
        self._commit(rows, batch[-1])
        if good:
            ep, r = good[-1]
            write_html(episode_figure(r.rows, f"Ep{ep} ({gym}): Vout/Vin={r.params.vout_vin:.2f}, "
                                              f"Iout/Icrit={r.params.iout_icrit:.2f}"), self.dir.episode_plot)
        return rows, results

    @staticmethod
    def _verdict(ep: int, result, loss: float, mismatch: dict[int, list[str]]) -> tuple[str, str]:
        """(status, error) of one episode of a batch; a batch the SPICE check refused names the episode why."""
        if not isinstance(result, Episode):
            return "failed", f"{type(result).__name__}: {str(result).splitlines()[0][:300]}"
        if ep in mismatch:
            return "spice_mismatch", "SPICE check: " + "; ".join(mismatch[ep])
        if mismatch:
            return "not_updated", f"not used for an update: the SPICE check refused episode {next(iter(mismatch))} " \
                                  "of this batch"
        if not np.isfinite(loss):
            return "failed", "loss is not finite"
        return "ok", ""

    def _commit(self, rows: pd.DataFrame, last_episode: int) -> None:
        # Order matters for kill -9 safety: the log row first, the checkpoint second. A kill in between
        # leaves a row past the checkpoint's episode, which the next start drops and re-runs.
        self.log = pd.concat([self.log, rows], ignore_index=True) if len(self.log) else rows
        self.dir.write_log(self.log)
        save_checkpoint(self.dir.final, self.actor, episode=last_episode, seed=self.seed,
                        optimizer=self.learner.state_dict(), learner=self.learner.name, schedule=self.cfg.schedule,
                        init=self.init_source)
        self.next_episode = last_episode + 1
        write_html(loss_figure(self.log), self.dir.loss_plot, header=loss_header(self.log, self.dir.root))


def _validate(cfg: TrainConfig) -> None:
    checks = [(cfg.jobs >= 1, f"--jobs must be >= 1, got {cfg.jobs}"),
              (cfg.epochs >= 1, f"--epochs must be >= 1, got {cfg.epochs}"),
              (cfg.lr > 0, f"--lr must be positive, got {cfg.lr}"),
              (cfg.episodes is None or cfg.episodes >= 0, f"--episodes must be >= 0, got {cfg.episodes}"),
              (cfg.start_episode is None or cfg.start_episode >= 1,
               f"--start-episode must be >= 1, got {cfg.start_episode}"),
              (cfg.max_failures >= 1, f"--max-failures must be >= 1, got {cfg.max_failures}"),
              (cfg.spice_check_every is None or cfg.spice_check_every >= 0,
               f"--spice-check-every must be >= 0, got {cfg.spice_check_every}"),
              (cfg.gym in (None, "gym1", "gym2"), f"--gym must be gym1 or gym2, got {cfg.gym!r}"),
              (cfg.max_step is None or cfg.max_step > 0, f"--max-step must be positive, got {cfg.max_step}")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    EpisodeParams(vin=200.0, ro=10.0, Lo=50e-6, vref=100.0, steps=cfg.steps)  # --steps >= 8


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="episode", disable=not enabled, dynamic_ncols=True)


def _report(bar, ep: int, gym: str, loss: float | None, error: str) -> None:
    quiet = bar is None or bar.disable
    if loss is None:
        message = f"[Ep{ep}] {gym} FAILED: {error}"
        (log.error if quiet else bar.write)(message)
    elif quiet:
        log.info("[Ep%d] %s loss %.6e", ep, gym, loss)
    else:
        bar.set_postfix_str(f"ep {ep} {gym} loss {loss:.3e}")
    if bar is not None:
        bar.update(1)


def train(config: TrainConfig) -> pd.DataFrame:
    """Run (or resume) training in ``config.workdir``; returns the log."""
    return Trainer(config).run()


__all__ = ["TrainConfig", "Trainer", "TrainingStopped", "bi_update", "train", "CheckpointError", "Learner"]
