"""Model selection of a recipe: the network that scores best on validation points of the training box (never the
held-out corners or the plan's), by the default plan's tests there or by closeness to the teacher in closed loop, kept
as ``actor_selected.pth`` beside the run's latest one."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from ..converters.buck.converter import reference
from ..converters.buck.spec import EpisodeParams
from ..nn.checkpoint import load_checkpoint, save_checkpoint
from ..util.fsutil import atomic_write_text
from .recipes import Recipe

log = logging.getLogger("buckbi.train")
VALIDATION_STREAM = 0x5E1EC7  # rng([seed, this]): the validation points, apart from every episode's draw
RESTART_STREAM = 0x9E57A7  # the restarts' final comparison: a draw apart from each run's own validation points
STEPS = {"soft_start_ms": 2.0, "t_step_ms": 15.0, "t_back_ms": 28.0, "duration_ms": 41.0}
# (scenario, its settings, from when its error counts (ms, after the soft start), control periods it runs)
VALIDATION_SCENARIOS = (("refstep", STEPS, 5.0, 2048),
                        ("loadstep", STEPS | {"light_ohm": 80.0, "heavy_ohm": 10.0}, 5.0, 2048))


@dataclass
class Validation:
    """The validation points and the teacher's closed-loop Vout there (run once per run)."""

    points: list[EpisodeParams]
    settings: dict[str, list[dict]]
    teacher: dict[str, list[np.ndarray]]
    teacher_T: list[np.ndarray | None]  # the teacher's loop gain at each point (None: it has none there)


def validation_points(recipe: Recipe, seed: int,
                      stream: int = VALIDATION_STREAM) -> tuple[list[EpisodeParams], dict[str, list[dict]]]:
    """``recipe.select_points`` points of the recipe's box (held-out corners excluded, no noise, nominal parts), the
    first ``select_edges`` share of them on a face of the box (vin or vref at one of its ends), each with a reference
    step of +-10 % (the sign alternates) and the load step."""
    rng = np.random.default_rng([seed, stream])
    points: list[EpisodeParams] = []
    edges = int(round(recipe.select_edges * recipe.select_points))
    while len(points) < recipe.select_points:
        pin = None
        if len(points) < edges:  # a face: the axis, then its end
            axis = ("vin", "vref")[int(rng.integers(2))]
            pin = {axis: recipe.box_axis(axis)[int(rng.integers(2))]}
        p = recipe.point(rng, 2048, pin)
        if p is None:
            continue
        points.append(recipe.conv.params(vin=p.vin, vref=p.vref, ro=p.ro, Lo=p.Lo, steps=p.steps))
    settings = {name: [recipe.carried(st) | ({"step_pct": 10.0 if i % 2 else -10.0} if name == "refstep"
                                             else {})
                       for i in range(len(points))] for name, st, _, _ in VALIDATION_SCENARIOS}
    for i, p in enumerate(points):  # a step up that would reach vin steps down instead
        if p.vref * 1.1 >= p.vin:
            settings["refstep"][i]["step_pct"] = -10.0
    return points, settings


def closed_loop_vout(gym: str, actor, v: Validation, scenario: str, workdir: Path) -> list[np.ndarray]:
    from dataclasses import replace

    from ..converters.buck.scenarios import scenario_params
    from ..episodes.run import run_episodes
    steps = {name: n for name, _, _, n in VALIDATION_SCENARIOS}[scenario]
    params = [scenario_params(replace(p, steps=steps), scenario, st) for p, st in zip(v.points, v.settings[scenario])]
    eps = run_episodes(gym, actor, params, workdir, "pwl", scenario=scenario, settings=v.settings[scenario],
                       parallel=len(params))
    return [e.rows["V(out)"].to_numpy() if not isinstance(e, Exception) else None for e in eps]


def validation_cells(recipe: Recipe, points: list[EpisodeParams]) -> list:
    """The default plan's tests (no tolerance draws, no long run) at the validation points instead of its corners:
    (test, corner) pairs for ``select_by = "plan"``, with the scenario settings carried to the recipe's converter and
    each test kept only where its scenario can run there (a line step up stays within vmax)."""
    from dataclasses import replace as copy

    from ..converters.buck.scenarios import get_scenario
    from ..testplan.plan import Corner, cell_params, load_plan
    conv = recipe.converter
    corners = [Corner(f"val{k}", p.vin, p.vref, p.ro, p.Lo, conv) for k, p in enumerate(points, 1)]
    cells = []
    for test in load_plan("default").tests:
        if test.variation is not None or test.scenario == "longrun":
            continue
        test = copy(test, settings=recipe.carried(test.settings), corners=tuple(c.name for c in corners))
        for c in corners:
            if test.scenario == "fra" or not get_scenario(test.scenario).problems(cell_params(test, c), test.settings):
                cells.append((test, c))
    return cells


class Selection:
    """Scores networks during a run and keeps the best (lowest). With ``select_by = "plan"`` the score is the
    validation-plan lines the network misses (``plan_misses``) plus 1/100 of the closeness score. The closeness
    score: the closed-loop Vout error against the teacher (rms, % of vref, mean over the validation points' reference
    and load steps after the soft start) plus the loop-gain mismatch (``signoff.mismatch`` with the learner's crossover
    weights, mean over the points, each at its own periodic orbit), plus the recipe's ``select_no_orbit`` per point where the teacher has a
    stable orbit and the network none. A network that fails to run scores inf."""

    def __init__(self, recipe: Recipe, seed: int, root: Path, stream: int = VALIDATION_STREAM):
        self.recipe, self.root = recipe, Path(root)
        self.best_file, self.csv = self.root / "actor_selected.pth", self.root / "selection.csv"
        self.cells: list = []
        self.teacher_passes: list[bool] | None = None  # select_by = "plan": the teacher's verdicts, once per run
        points, settings = validation_points(recipe, seed, stream)
        self.v = Validation(points, settings, {}, [])
        for name, *_ in VALIDATION_SCENARIOS:
            self.v.teacher[name] = closed_loop_vout("teacher", None, self.v, name, self.root / "sim-selection")
        from ..loopgain.pop import PopError, loop_gain
        from .targets import crossover_weights
        self.weights: list[np.ndarray | None] = []
        for p in points:
            try:
                T = loop_gain("teacher", None, p, recipe.frequencies()).T
            except PopError:
                T = None
            self.v.teacher_T.append(T)
            self.weights.append(None if T is None else
                                crossover_weights(T, recipe.frequencies(), recipe.loop_gain_crossover_boost))

    @property
    def scored_by(self) -> str:
        """What the score counts, in words (kept in the selected checkpoint)."""
        closeness = ("closed-loop rms Vout error against the teacher (% of vref) plus the loop-gain mismatch at "
                     f"{len(self.v.points)} validation points")
        if self.recipe.select_by != "plan":
            return closeness
        guard = (f", a passed line in the last {self.recipe.select_guard:.0%} of a limit counting that far towards a "
                 "miss" if self.recipe.select_guard else "")
        return ("the default plan's tests at the validation points that the teacher passes and the network misses"
                f"{guard}; ties broken by 1/100 of the {closeness}")

    def due(self, episode: int) -> bool:
        return selection_due(self.recipe, episode)

    def score(self, actor: nn.Module) -> float:
        closeness = self.step_error(actor) + self.loop_gain_mismatch(actor)
        if self.recipe.select_by != "plan":
            return closeness
        return self.plan_misses(actor) + closeness / 100.0  # lines first; closeness to the teacher breaks ties

    def plan_misses(self, actor: nn.Module) -> float:
        """Validation-plan lines (``validation_cells``) the teacher passes and the network misses (with the recipe's
        ``select_guard``: plus the share of the guard band the passed ones run into)."""
        from ..testplan.cells import run_cell
        from ..testplan.report import missed_limits
        if self.teacher_passes is None:
            self.cells = validation_cells(self.recipe, self.v.points)
            self.teacher_passes = [not missed_limits(t, "teacher", (r := run_cell(None, t, c, "teacher", "pwl"))
                                                     ["figures"], r["error"]) for t, c in self.cells]
        misses = 0.0
        for (test, corner), teacher_ok in zip(self.cells, self.teacher_passes):
            if teacher_ok:
                r = run_cell(actor, test, corner, "nn", "pwl")
                missed = bool(missed_limits(test, "nn", r["figures"], r["error"]))
                misses += 1.0 if missed else guard_share(test, r["figures"], self.recipe.select_guard)
        return misses

    def loop_gain_mismatch(self, actor: nn.Module) -> float:
        import torch

        from ..loopgain.pop import PopError, loop_gain
        from .targets import mismatch
        terms, missing = [], 0
        for p, Tt, w in zip(self.v.points, self.v.teacher_T, self.weights):
            if Tt is None:
                continue
            try:
                T = loop_gain("nn", actor, p, self.recipe.frequencies()).T
            except PopError:
                missing += 1
                continue
            terms.append(float(mismatch(torch.from_numpy(T), torch.from_numpy(Tt), torch.from_numpy(w))))
        return (float(np.mean(terms)) if terms else 0.0) + self.recipe.select_no_orbit * missing

    def step_error(self, actor: nn.Module) -> float:
        errors = []
        for name, _, from_ms, _ in VALIDATION_SCENARIOS:
            nn_vout = closed_loop_vout("deploy", actor, self.v, name, self.root / "sim-selection")
            for p, a, b in zip(self.v.points, nn_vout, self.v.teacher[name]):
                if a is None or b is None or len(a) != len(b) or not np.all(np.isfinite(a)):
                    return float("inf")
                k = int(from_ms * 1e-3 * reference().fsw)  # in the reference's periods, as carried()
                errors.append(np.sqrt(np.mean((a[k:] - b[k:]) ** 2)) / p.vref * 100)
        return float(np.mean(errors))

    def best(self) -> float:
        if not self.best_file.exists():
            return float("inf")
        _, meta = load_checkpoint(self.best_file)
        return float(meta.get("score", float("inf")))

    def __call__(self, actor: nn.Module, episode: int, seed: int, recipe_name: str) -> float:
        """Score the network as it leaves ``episode``; keep it if it is the best so far. Returns the score."""
        s = self.score(actor)
        best = self.best()
        if s < best:
            save_checkpoint(self.best_file, actor, episode=episode, seed=seed, score=s, recipe=recipe_name,
                            converter=self.recipe.conv.record(), selected_by=self.scored_by)
        row = pd.DataFrame([{"episode": episode, "score": s, "kept": s < best}])
        old = pd.read_csv(self.csv).rename(columns={"score_pct": "score"}) if self.csv.exists() else None  # (its old name)
        table = row if old is None else pd.concat([old[old["episode"] < episode], row], ignore_index=True)
        atomic_write_text(self.csv, table.to_csv(index=False))
        log.info("[Ep%d] selection by %s: score %.3f%s", episode, self.recipe.select_by, s, " (kept)" if s < best else "")
        return s


def guard_share(test, figures: dict, guard: float) -> float:
    """How far a passed line runs into its limits' guard band (the last ``guard`` share of each): 0 outside it,
    rising linearly to 1 at the limit; the largest over its limits (0 where ``guard`` is 0)."""
    if not guard:
        return 0.0
    share = 0.0
    for lim in test.limits:
        value = figures.get(lim.figure)
        if value is None or np.isnan(float(value)):
            continue
        share = max(share, float(np.clip((lim.usage(float(value)) - (1.0 - guard)) / guard, 0.0, 1.0)))
    return share


def selection_due(recipe: Recipe, episode: int) -> bool:
    """Whether the recipe's selection scores the network leaving ``episode``."""
    r = recipe
    return bool(r.select_every) and episode >= r.select_after and episode % r.select_every == 0


def leaving_checkpoint(run: Path, episode: int) -> Path | None:
    """The checkpoint of the network leaving ``episode``'s batch, the one the selection scores at ``episode``:
    ``actor_ep{N+1}.pth``, or ``actor_final.pth`` after the run's last episode; None where the run has neither."""
    run = Path(run)
    path = run / f"actor_ep{episode + 1}.pth"
    if path.exists():
        return path
    final = run / "actor_final.pth"
    episodes = [int(p.stem[len("actor_ep"):]) for p in run.glob("actor_ep*.pth") if p.stem[len("actor_ep"):].isdigit()]
    return final if final.exists() and episodes and episode == max(episodes) else None  # after the run's last episode


def replay_selection(run: Path, recipe: Recipe, seed: int, out: Path | None = None) -> pd.DataFrame:
    """The model selection of a finished run made again from its checkpoints, as the run makes it: at each due episode
    N the network leaving N's batch (``leaving_checkpoint``), scored and kept in ``out`` (default: the run's folder,
    whose own two files are kept as ``*.before-replay``, once) as ``actor_selected.pth`` and ``selection.csv``. Training
    never reads the selection, so this is what a run with ``recipe``'s selection settings keeps."""
    run, out = Path(run), Path(out or run)
    due = [e for e in range(1, recipe.episodes + 1) if selection_due(recipe, e)]
    paths = {e: leaving_checkpoint(run, e) for e in due}
    missing = [e for e, path in paths.items() if path is None]
    if missing:  # before anything of the run is moved
        raise FileNotFoundError(f"{run}: no checkpoint of the network leaving episode(s) "
                                f"{', '.join(map(str, missing))} (actor_ep<N+1>.pth, or actor_final.pth after the last); "
                                "replay a run that went to its end with the recipe it was trained by")
    for old in (out / "actor_selected.pth", out / "selection.csv"):
        kept = old.with_name(old.name + ".before-replay")
        if out == run and old.exists() and not kept.exists():
            old.replace(kept)  # the run's own selection, kept (a second replay keeps the first's original)
        old.unlink(missing_ok=True)
    sel = Selection(recipe, seed, out)
    for episode in due:
        actor, _ = load_checkpoint(paths[episode])
        sel(actor, episode, seed, recipe.name)
    return pd.read_csv(sel.csv)
