"""Training orchestration as in the seed notebook: run a batch of episodes, hand them to the learner, run the checks,
commit (log row, then checkpoint). The learner (behaviour imitation by default), the checks and the run folder's
schema live beside it (``learners``, ``checks``, ``artefacts``)."""
from __future__ import annotations

import logging
import secrets
import shutil
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..nn.checkpoint import CheckpointError, check_actor_shape, fresh_actor, load_checkpoint, save_checkpoint
from ..contract import Episode
from ..converters.buck.converter import reference
from ..converters.buck.spec import EpisodeParams
from ..episodes.run import run_episodes
from .artefacts import CHECK_COLUMNS, COLUMNS, RunDir, log_row
from .checks import SpiceCheck
from .config import TrainConfig
from .learners import Learner, bi_update, behaviour_imitation
from .signoff import signoff_learner
from ..util.html import write_html
from .plots import episode_figure, loss_figure, loss_header
from .recipes import EpisodePlan, get_recipe
from .schedule import gym_for_episode, parse_schedule, schedule_length

log = logging.getLogger("buckbi.train")
EpisodeRunner = Callable[..., list]  # run_episodes' signature; a Dask-backed runner can stand in


class TrainingStopped(RuntimeError):
    """Training gave up (too many consecutive failed episodes)."""


class Trainer:
    """One training folder: resumes where its last committed episode ended."""

    def __init__(self, config: TrainConfig):
        from ..converters.buck.design import load_converter
        # RecipeError names the recipes there are; ConverterError the converter file's problem
        self.recipe = get_recipe(config.recipe).for_converter(load_converter(config.converter))
        self.converter = self.recipe.conv.record()  # what every checkpoint of the run records
        config = replace(config, recipe=self.recipe)
        if config.schedule is not None and not self.recipe.seed_draw:
            raise ValueError(f"--schedule sets the gyms of the seed recipe; the {self.recipe.name} recipe draws its "
                             "own (change its share of gym 2 with --set dagger_share=..., or give --gym)")
        self.cfg = config = config.resolved()
        _validate(config)  # before anything is written
        self.dir = RunDir(config.workdir)
        self.stages = parse_schedule(config.schedule)
        self._plans: dict[int, EpisodePlan] = {}
        self.dir.root.mkdir(parents=True, exist_ok=True)
        self.dir.remove_stale_temporaries()
        if config.fresh:
            moved = self.dir.archive_previous()
            if moved:
                log.warning("--fresh: moved the previous run to %s", moved)
        if (self.dir.root / "restarts.csv").exists() or any(self.dir.root.glob("restart-*/actor_final.pth")):
            raise ValueError(f"{self.dir.root} holds runs of a recipe with restarts (restart-*/): resume it with the "
                             "same --set restarts=..., or add --fresh to move them aside")
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
        self._selection = None

    @property
    def selection(self):
        """The recipe's model selection (None: off), its validation runs made on first use."""
        if self._selection is None and self.recipe.select_every:
            from .selection import Selection
            self._selection = Selection(self.recipe, self.seed, self.dir.root)
        return self._selection

    def _restore(self) -> tuple[nn.Module, Learner, int, int]:
        cfg = self.cfg
        meta: dict = {}
        if self.dir.final.exists():
            actor, meta = load_checkpoint(self.dir.final)  # CheckpointError names the file and the way out
            if meta.get("recipe", "seed") != self.recipe.name:
                raise CheckpointError(
                    f"{self.dir.root} holds a run of the {meta.get('recipe', 'seed')!r} recipe, not "
                    f"{self.recipe.name!r}: resume it with --recipe {meta.get('recipe', 'seed')}, or add --fresh to "
                    f"move it aside and start the {self.recipe.name} recipe")
            had = meta.get("converter") or reference().record()  # runs before converter files: the reference's
            if had != self.converter:
                raise CheckpointError(
                    f"{self.dir.root} holds a run for converter {had.get('name')!r}, not {self.converter['name']!r}: "
                    "resume it with its --converter, or add --fresh to move it aside")
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
                actor = fresh_actor(self.recipe.output, self.recipe.hidden)
            meta = {"seed": seed, "episode": 0, "init": str(Path(cfg.init).resolve()) if cfg.init else None}
        self.init_source = meta.get("init")
        seed = int(meta.get("seed", cfg.seed if cfg.seed is not None else 0))
        factory = cfg.learner or (behaviour_imitation if self.recipe.learner == "bi" else signoff_learner)
        learner = factory(actor, replace(cfg, seed=seed))
        if "optimizer" in meta:
            learner.load_state_dict(meta["optimizer"])
        if cfg.seed is not None and cfg.seed != seed and self.dir.final.exists():
            log.warning("resuming a run started with --seed %d; keeping it (use --fresh for seed %d)", seed, cfg.seed)
        done = int(meta["episode"]) if "episode" in meta else self._last_logged()
        return actor.eval(), learner, seed, done

    def _last_logged(self) -> int:
        logged = self.dir.read_log()
        return int(logged["episode"].max()) if len(logged) else 0

    def plan_for(self, episode: int) -> EpisodePlan:
        """Episode ``episode``'s gym, scenario, settings and point, drawn from (seed, episode) by the recipe: the
        same draw on a resumed run."""
        if episode not in self._plans:
            self._plans[episode] = self.recipe.plan(self.seed, episode, self.cfg.steps)
        return self._plans[episode]

    def params_for(self, episode: int) -> EpisodeParams:
        """Episode parameters drawn from (seed, episode): the same draw on a resumed run."""
        return self.plan_for(episode).params

    def gym_for(self, episode: int) -> str:
        if self.cfg.gym:
            return self.cfg.gym
        return self.plan_for(episode).gym if not self.recipe.seed_draw else gym_for_episode(self.stages, episode)

    @property
    def length(self) -> int:
        """The run's planned episodes: the schedule's, or the recipe's where it draws the gyms itself."""
        return self.recipe.episodes if not self.recipe.seed_draw else schedule_length(self.stages)

    def planned(self) -> list[int]:
        """Episode numbers this invocation runs."""
        count = self.cfg.episodes
        if count is None:
            count = max(0, self.length - self.next_episode + 1)
        return list(range(self.next_episode, self.next_episode + count))

    def batches(self, planned: list[int]) -> list[list[int]]:
        """Up to ``jobs`` consecutive episodes per batch (they share one actor update); of one gym where the
        schedule sets the gyms, mixed where the recipe draws them."""
        out: list[list[int]] = []
        for ep in planned:
            if out and len(out[-1]) < self.cfg.jobs and (not self.recipe.seed_draw
                                                         or self.gym_for(out[-1][0]) == self.gym_for(ep)):
                out[-1].append(ep)
            else:
                out.append([ep])
        return out

    def run(self) -> pd.DataFrame:
        """Run the planned episodes in batches of ``jobs``; returns the log."""
        planned = self.planned()
        if not planned:
            log.warning("nothing to run: the %s recipe ends at episode %d (use --episodes N to go on)",
                        self.recipe.name, self.length)
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

    def groups(self, batch: list[int]) -> dict[tuple[str, str], list[int]]:
        """The batch's episodes by (gym, scenario): one runner call each."""
        out: dict[tuple[str, str], list[int]] = {}
        for ep in batch:
            out.setdefault((self.gym_for(ep), self.plan_for(ep).scenario), []).append(ep)
        return out

    def checked_episodes(self, batch: list[int], found: dict) -> set[int] | None:
        """The episodes of ``batch`` the SPICE check runs again. Where the recipe draws its gyms, a due gym-2 episode
        is checked through a gym-1 episode of the same batch (same actor): with the teacher driving, the two engines'
        trajectories stay comparable, while an immature network's own loop can amplify their 1e-4 differences into
        a diverging trajectory with both engines right (measured: signoff seed 1, episode 400, light load, Vout
        apart by 0.01 V at 3 ms and 0.5 V at 15 ms). None: the check's own rule (every N-th episode)."""
        if self.recipe.seed_draw:
            return None
        due = [ep for ep in batch if self.check.due(ep)]
        gym1 = [ep for ep in batch if self.gym_for(ep) == "gym1" and isinstance(found[ep], Episode)]
        out = set()
        for ep in due:
            if self.gym_for(ep) == "gym1":
                out.add(ep)
            elif gym1:
                out.add(gym1[-1])
            else:
                log.info("[Ep%d] SPICE check skipped: no teacher-driven episode in its batch", ep)
        return out

    def _scenario_args(self, eps: list[int]) -> dict:
        plan = self.plan_for(eps[0])
        if plan.scenario == "startup" and not any(self.plan_for(ep).settings for ep in eps):
            return {}  # the seed's call, as a custom runner of the seed's signature takes it
        return {"scenario": plan.scenario, "settings": [self.plan_for(ep).settings for ep in eps]}

    def run_batch(self, batch: list[int], bar=None) -> tuple[pd.DataFrame, list]:
        """Simulate ``batch``, update the actor on the joined data, commit; returns rows and results."""
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        params = [self.params_for(ep) for ep in batch]
        for ep in batch:  # the actor as it enters the episode, as the seed saves it
            save_checkpoint(self.dir.actor(ep), self.actor, episode=ep - 1, seed=self.seed, converter=self.converter)
        t0 = time.perf_counter()
        step = {"max_step": self.cfg.max_step} if self.cfg.max_step is not None else {}
        found: dict[int, object] = {}
        for (gym, _), eps in self.groups(batch).items():
            out = self.runner(gym, self.actor, [self.params_for(ep) for ep in eps], self.dir.sim, self.cfg.simulator,
                              parallel=len(eps), timeout=self.cfg.timeout, **step, **self._scenario_args(eps))
            found |= dict(zip(eps, out))
        results = [found[ep] for ep in batch]
        wall = time.perf_counter() - t0
        for ep, r in zip(batch, results):
            if isinstance(r, Episode):
                self.dir.keep_episode_files(ep, r.artefacts)
        shutil.rmtree(self.dir.sim, ignore_errors=True)
        checks = {}
        if self.check:
            only = self.checked_episodes(batch, found)
            for (gym, _), eps in self.groups(batch).items():
                checks |= self.check(gym, self.actor, eps, [self.params_for(ep) for ep in eps],
                                     [found[ep] for ep in eps], self.dir.root, only=only,
                                     **self._scenario_args(eps))
        mismatch = {ep: c.violations for ep, c in checks.items() if c.violations}
        good = [(ep, r) for ep, r in zip(batch, results) if isinstance(r, Episode)] if not mismatch else []
        loss = self.learner.update([r for _, r in good]) if good else float("nan")
        rows = []
        for ep, p, r in zip(batch, params, results):
            status, error = self._verdict(ep, r, loss, mismatch)
            gym = self.gym_for(ep)
            rows.append(log_row(ep, p, gym=gym, scenario=self.plan_for(ep).scenario, stamp=stamp, epochs=self.cfg.epochs, status=status, loss=loss,
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
        if self.selection is not None and any(self.selection.due(ep) for ep in batch):
            self.selection(self.actor, batch[-1], self.seed, self.recipe.name)  # before the commit: a kill redoes it
        self._commit(rows, batch[-1])
        if good:
            ep, r = good[-1]
            write_html(episode_figure(r.rows, f"Ep{ep} ({self.gym_for(ep)}, {self.plan_for(ep).scenario}): Vout/Vin={r.params.vout_vin:.2f}, "
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
                        init=self.init_source, recipe=self.recipe.name, converter=self.converter)
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


__all__ = ["TrainConfig", "Trainer", "TrainingStopped", "bi_update", "CheckpointError", "Learner"]
