"""A recipe trained ``restarts`` times side by side: one run per process (seeds K(s-1)+1 .. Ks for ``--seed s``), each
a whole run of the recipe in ``WORKDIR/restart-SEED/`` (it resumes by itself), then each run's kept network scored
again at a validation draw of its own (``selection.RESTART_STREAM``, never the plan's corners) and the best one
kept as ``WORKDIR/actor_selected.pth``. On a machine with a core per run it costs no more wall time than one run."""
from __future__ import annotations

import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from ..nn.checkpoint import load_checkpoint, save_checkpoint
from ..util.fsutil import atomic_write_text
from .loop import Trainer
from .recipes import Recipe, get_recipe

log = logging.getLogger("buckbi.train")


def restart_seeds(seed: int | None, restarts: int) -> list[int | None]:
    """The runs' seeds for ``--seed seed``: K(s-1)+1 .. Ks (seed 1 of two restarts: 1 and 2); None: each its own."""
    if seed is None:
        return [None] * restarts
    if seed < 1:
        raise ValueError(f"--seed must be >= 1 with restarts = {restarts} (its runs take seeds "
                         f"{restarts} x (seed - 1) + 1 ..), got {seed}")
    return [restarts * (seed - 1) + k + 1 for k in range(restarts)]


def _one(config):
    return Trainer(config).run()


def train_restarts(config) -> pd.DataFrame:
    """Train the runs (in parallel, up to one per core), pick the best kept network; returns their joined log."""
    recipe = get_recipe(config.recipe)
    from .artefacts import RunDir
    root = Path(config.workdir)
    root.mkdir(parents=True, exist_ok=True)
    if config.fresh:
        moved = RunDir(root).archive_previous()
        if moved:
            log.warning("--fresh: moved the previous runs to %s", moved)
    elif (root / "actor_final.pth").exists():
        raise ValueError(f"{root} holds a run of one (actor_final.pth): a recipe with restarts = {recipe.restarts} "
                         "trains its runs in restart-*/ beside it; add --fresh to move it aside, or give another "
                         "--workdir")
    single = replace(recipe, restarts=1)
    runs = [replace(config, recipe=single, seed=s, workdir=root / f"restart-{s if s is not None else k + 1}",
                    progress=False, fresh=False)
            for k, s in enumerate(restart_seeds(config.seed, recipe.restarts))]
    workers = max(1, min(len(runs), os.cpu_count() or 1))
    log.info("training %d runs of the %s recipe side by side in %s (%d at a time)", len(runs), recipe.name, root,
             workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        logs = list(pool.map(_one, runs))
    waiting = [r.workdir.name for r in runs if not (r.workdir / "actor_selected.pth").exists()]
    if waiting:  # stopped before their selection (--episodes): the pick waits for the rest of the runs
        log.warning("no pick among the runs yet: %s not at their selection; run the command again to go on",
                    ", ".join(waiting))
    else:
        pick_restart(root, single, [r.workdir for r in runs])
    return pd.concat([lg.assign(restart=r.workdir.name) for lg, r in zip(logs, runs)], ignore_index=True)


def pick_restart(root: Path, recipe: Recipe, runs: list[Path]) -> pd.DataFrame:
    """Score each run's ``actor_selected.pth`` at the restarts' validation draw (the first run's seed) and keep the
    best as ``root/actor_selected.pth`` (its run, episode and both scores in its record); ``restarts.csv`` lists
    them all. A run without a kept network is refused, naming it."""
    from .selection import RESTART_STREAM, Selection
    kept = []
    for run in runs:
        path = Path(run) / "actor_selected.pth"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: that run has not reached its selection; run the command "
                                    "again to resume it")
        kept.append((Path(run), *load_checkpoint(path)))
    seed = int(kept[0][2]["seed"])
    scorer = Selection(recipe, seed, root / "restart-pick", stream=RESTART_STREAM)
    rows = []
    for run, actor, meta in kept:
        score = scorer.score(actor)
        rows.append({"run": run.name, "seed": meta["seed"], "episode": meta["episode"], "score": meta["score"],
                     "restart_score": score})
        log.info("%s: its network (episode %d) scores %.3f at the restarts' validation points", run.name,
                 meta["episode"], score)
    table = pd.DataFrame(rows)
    best = int(table["restart_score"].idxmin())
    table["kept"] = [i == best for i in range(len(table))]
    run, actor, meta = kept[best]
    save_checkpoint(root / "actor_selected.pth", actor, **(meta | {"run": run.name, "restart_score": float(table["restart_score"][best]),
                                          "selected_by": f"{meta.get('selected_by', 'its run')}; of {len(kept)} "
                                          "runs, the best at the restarts' validation points"}))
    atomic_write_text(root / "restarts.csv", table.to_csv(index=False))
    shutil.rmtree(root / "restart-pick" / "sim-selection", ignore_errors=True)
    return table
