"""Training recipes: named sets of settings in one place (what episodes run, how the learner fits them).

``seed`` is the seed notebook's schedule, unchanged. ``signoff`` trains for the sign-off plan: reference, load and
line steps over the training box, component draws from the tolerance table, sensor-noise excitation the teacher
labels, on-policy rows (DAgger: the network drives, the teacher labels), a replay buffer, and a loop-gain term that
matches the network's T(f) to the teacher's at the episodes' own operating points (POP + AC, held orbit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..converters.buck.converter import Converter, is_reference, reference
from ..converters.buck.scenarios import carry_settings, get_scenario, mapped_axis, scenario_params
from ..converters.buck.spec import COMPONENTS, EpisodeParams
from .schedule import DEFAULT_SCHEDULE, gym_for_episode, parse_schedule


BOX_AXES = ("vin", "vref", "ro", "Lo", "ratio")  # what the training box may set


class RecipeError(ValueError):
    """An unknown recipe, or one whose settings contradict each other."""


@dataclass(frozen=True)
class EpisodePlan:
    """What one training episode runs: its gym, scenario, the scenario's settings and the operating point."""

    gym: str
    scenario: str
    settings: dict
    params: EpisodeParams


@dataclass(frozen=True)
class Recipe:
    """One named set of training settings; every ingredient is a field (0 or () switches it off)."""

    name: str
    description: str
    learner: str = "bi"  # "bi": the seed's full-batch imitation; "signoff": replay, minibatches, loop-gain term
    schedule: str = DEFAULT_SCHEDULE  # gyms by episode number (the seed's); a recipe with scenarios draws its own
    episodes: int = 500  # the recipe's length (a run goes to its end unless --episodes says otherwise)
    jobs: int = 1  # episodes per update
    steps: int = 2048  # control periods of an episode without its own duration
    epochs: int = 200  # optimiser steps per update (full batch for "bi", minibatches for "signoff")
    lr: float = 1e-4
    lr_final: float | None = None  # cosine decay from lr to this over the recipe's updates (None: constant lr)
    # -- what the episodes vary ("seed": the seed's constant-reference soft start, nothing else) --
    scenarios: tuple[tuple[str, float], ...] = ()  # (scenario, weight); () = the seed's draw (start-up only)
    # the training box: (low, high, "uniform" | "log") per axis; the seed's box, uniform, where not given. Axis
    # "ratio" draws the conversion ratio vref / vin (the duty) first, then vin uniform where vref = ratio x vin lies in
    # vref's range: drawn uniform in vin and vref, ratios above 0.85 are 2.4 % of the reference's episodes (its
    # corner vin 150 V / vref 140 V is 0.93), uniform in ratio 0.2..0.97 16 %
    box: dict = field(default_factory=dict)
    duration_ms: float = 41.0  # length of the step scenarios' episodes
    soft_start_ms: tuple[float, float] = (2.0, 2.0)  # uniform
    step_ms: tuple[float, float] = (12.0, 22.0)  # first event, uniform
    back_ms: tuple[float, float] = (26.0, 36.0)  # second event, uniform
    ref_step_pct: tuple[float, float] = (5.0, 25.0)  # magnitude, either sign
    line_step_pct: tuple[float, float] = (5.0, 20.0)  # magnitude, either sign
    light_ohm: tuple[float, float] = (20.0, 80.0)
    heavy_ohm: tuple[float, float] = (5.0, 20.0)
    parts_tolerance: dict = field(default_factory=dict)  # part -> ("uniform", rel) | ("log", factor): drawn per episode
    excitation_mV: tuple[float, float] = (0.0, 0.0)  # sensor noise rms (both the network and the teacher read it)
    dagger_share: float = 0.0  # share of gym2 episodes (the network drives, the teacher labels)
    dagger_after: int = 0  # episodes of gym1 before the first gym2
    # on-policy rows whose teacher is at a rail (duty < 0.001 or > 0.99): "keep", or "drop" (its integrator wound up
    # behind the network's persisting error: a label for the teacher's history, not for the state the network reads)
    dagger_rails: str = "keep"
    # redraw an episode whose teacher loop is unstable (POP: its periodic orbit's critical pole >= 1, or no orbit) at a
    # point it visits (the start, and where a step takes it; a load step's levels as resistors) with its drawn parts:
    # with the capacitor's ESR above ~1.4-1.8 x nominal the Type III's gain at the switching ripple makes the loop
    # flip-unstable (period-map eigenvalue -1.1 to -1.6), the teacher driving gym 1 settles into a period-2
    # oscillation (applied duty alternating by up to 0.9) and its rows teach the network that oscillation
    stable_teacher: bool = False
    holdout: tuple[tuple[float, float], ...] = ()  # (vin, vref) corners no episode is drawn near
    holdout_box: tuple[float, float] = (10.0, 10.0)  # +- V in vin and vref around a held-out corner
    spice_check_every: int = 100  # on the fast engine, every N-th episode again in ngspice (--spice-check-every)
    delay_periods: int = 0  # deployment in the gym: the network's command applied this many periods late
    adc_bits: int = 0  # and read through an ADC of this many bits
    # -- the "signoff" learner --
    replay: int = 0  # batches kept for the fit (0: only the new one)
    minibatch: int = 0  # rows per optimiser step (0: full batch)
    # -- model selection: every select_every episodes from select_after on, the network that scores best at
    # select_points validation points of the box is kept (actor_selected.pth); 0: off
    select_every: int = 0
    select_after: int = 0
    select_points: int = 12
    # share of the validation points drawn on a face of the training box (vin or vref, one at a time, at its low or
    # high end; the held-out corners still excluded): a plan signs off at the envelope's edges, where a network that
    # sees data on one side only is least constrained (the recipe's misses gather at vin 150 V); 0: all inside
    select_edges: float = 0.0
    # a guard band for select_by = "plan": a validation line the network passes with a figure in the last
    # select_guard share of its limit counts that far towards a miss (a phase margin of 47.5 degrees against 45 with
    # 0.2: half a miss); candidates that pass the same lines are told apart by how close they run to the limits,
    # as production test guard-bands its limits against what it does not measure; 0: passed lines count 0
    select_guard: float = 0.0
    # "closeness": closed-loop error and loop-gain mismatch against the teacher; "plan": the default plan's tests at the
    # validation points, the lines the teacher passes and the network misses, closeness breaking ties
    select_by: str = "closeness"
    # the fit's loss on the duty: "mse" (the seed's), or "bce" (cross-entropy of the duty as a probability, less the
    # label's own entropy): its gradient on a sigmoid output's logit is (duty - label), not attenuated by the sigmoid's
    # slope where duties are small (light load, discontinuous conduction) or near 1
    fit_loss: str = "mse"
    # rows weighted by (vin / vref)^this (their inputs NNin16, NNin17; vref / vin kept above 0.02), mean 1 per minibatch:
    # 2 fits the duty's error relative to the steady-state duty, i.e. the output's relative to vref (0: off)
    relative_fit: float = 0.0
    # "inputs": the first layer's weight on each input steps in units of 1 / that input's spread over the first
    # batch (Adam on standardised inputs; the network itself, its export and checkpoints unchanged); "off": plain Adam
    precondition: str = "off"
    # the fresh network's output: "sigmoid" (the seed's), or "clamp" (a duty limiter, Hardtanh 0..1: linear over the
    # whole duty range, where the sigmoid's slope falls to d(1 - d) towards small and large duties)
    output: str = "sigmoid"
    # the fresh network's hidden activation: "relu" (the seed's) or "leaky_relu" (slope 0.01 below zero). In the
    # recipe's runs of seeds 1-4, 3-9 of the 16 second-layer ReLUs are dead by episode 800 and 5-7 by 1600 (active on
    # under 1 % of the first episodes' rows: benchmarks/dead_units.py): the small-signal law rests on what is left
    hidden: str = "relu"
    # rms (duty) of independent Gaussian noise added to each applied-duty input (NNin11..15, NNin18 recomputed) of the
    # fit's rows, labels unchanged: the teacher's duty follows from the errors and the accumulator, not from the duties
    # the loop applied, and a network fitted on clean rows learns to copy its last duty instead (the copycat problem of
    # imitation from histories): its integral action moves into its own duty history, with period-map poles near +-1.
    # Training with input noise is a ridge penalty on those inputs' weights (Bishop 1995). 0: off
    history_noise: float = 0.0
    # the fit's label: "clock" (the seed's: the teacher's output nnpwm sampled on ctrlclk with the inputs), or "applied"
    # (the teacher's command as the PWM hold took it after the row, tduty: what the network's output replaces; measured
    # 0.02-0.13 of duty from "clock" in steady state, through the switching ripple on nnpwm)
    label: str = "clock"
    # rms (duty) of a shift of the teacher's integrator in the fit's rows: NNin19 moved by shift / the teacher's duty
    # per unit of NNin19 (spec.accumulator_gain), the label by the shift (clipped to 0..1, rows at a rail left alone).
    # The teacher's duty is linear in its integrator, so each shifted row is one the teacher labels. Under the teacher
    # NNin19 ramps in steady state (the sampled error sees the ripple: -0.31 % of vref at 200/100 V full load) while
    # the label stays put, so plain rows cannot pin the network's integral gain (docs/training.md). 0: off
    accumulator_shift: float = 0.0
    average: float = 0.0  # the network run and saved: an average of the optimiser's weights, this decay per update
    transient_weight: float = 0.0  # rows drawn with odds 1 + this x |the label's change| / its mean (the steps' rows)
    loop_gain_weight: float = 0.0
    # the term's weight at the recipe's last update, reached from loop_gain_weight along a half cosine over the
    # updates (as the learning rate falls): imitation shapes the network first, the small-signal law is held harder
    # as it settles (None: constant)
    loop_gain_weight_final: float | None = None
    loop_gain_points: int = 0  # operating points of the batch at which T(f) is matched
    # with N > 0 the term holds every point of the last N batches at every optimiser step instead (train/pool.py:
    # the network's T from its Jacobian, loopgain/rank_one.py), loop_gain_points then unused. With 40 (~310 points),
    # seeds 1 and 2 passed 111 and 103 lines (the recipe's 119 and 114; docs/training.md). 0: off
    loop_gain_pool: int = 0
    loop_gain_band: tuple[float, float, int] = (100.0, 12.5e3, 3)  # f_lo, f_hi (Hz), points per octave
    # extra weight of the mismatch in a one-octave Gaussian window around the teacher's crossover (0: uniform)
    loop_gain_crossover_boost: float = 0.0
    # a hinge on the network's critical pole (largest |eigenvalue| of its period map at the loop-gain points' orbits)
    # beyond the teacher's plus stability_share of the teacher's distance to the unit circle (0: off)
    stability_weight: float = 0.0
    stability_share: float = 0.5
    # a hinge on the network's phase margin at the loop-gain points: (margin_floor_deg - its least phase margin over
    # the band's unity-gain crossings)^2 in radians^2 where positive (0: off). Matching the teacher's T(f) pulls towards
    # the teacher's own margins, 35.8-44.9 degrees at two of the default plan's light-load corners (limit 45) and
    # 35.7-35.8 at light-load points inside the box; the hinge asks for more (light-load crossovers lie at
    # 38-380 Hz: extend loop_gain_band down to them). Its weight: margin_weight
    margin_floor_deg: float = 0.0
    margin_weight: float = 0.0
    # the loop-gain term's target where the teacher's phase margin at the point is short of this (degrees): the
    # teacher's T(f) with its gain raised by the least factor (1..16, quarter octaves) that gives this margin. At
    # light load the buck's gain falls and the crossover drops below the Type III's zeros (38 Hz, 35.8 degrees at
    # vin 150 V / vref 140 V / 750 Ohm); raising the gain x8 moves it to 122 Hz and 47 degrees. The imitation rows at
    # those points still ask for the teacher's gain: with 50, seeds 1-4 passed 113, 118, 114 and 66 lines
    # (docs/training.md). 0: the teacher's own
    target_margin_deg: float = 0.0
    # runs of the recipe trained side by side (one process each; --seed s: seeds K(s-1)+1 .. Ks), the kept network of
    # each scored again at a validation draw of its own and the best kept (train/restarts.py). With 2, seeds 1-4 kept
    # networks passing 119, 111, 110 and 117 lines (one run each: 119, 114, 110, 111; docs/training.md). 1: one run
    restarts: int = 1
    select_no_orbit: float = 2.0  # the selection score's charge per validation point where the network has no orbit
    # the converter the episodes run on (None: the reference buck); the settings above are written for the
    # reference's and ``for_converter`` carries them over (times in control periods, loads and the box in its ranges)
    converter: Converter | None = field(default=None, compare=False, repr=False)

    @property
    def conv(self) -> Converter:
        return self.converter or reference()

    def for_converter(self, conv: Converter | None) -> "Recipe":
        """This recipe for ``conv``: event times scaled to its clock, the soft start to its own, the training box,
        load levels and held-out corners mapped from the reference's ranges onto its, the noise to its sensing range,
        the loop-gain band to its clock. The reference buck's is the recipe itself."""
        ref = reference()
        if is_reference(conv):
            return replace(self, converter=None)
        t, ss = ref.fsw / conv.fsw, conv.soft_start_ms / ref.soft_start_ms
        times = lambda pair: tuple(x * t for x in pair)  # noqa: E731
        rr, cr = ref.ranges, conv.ranges
        axis = mapped_axis(conv)
        box = {k: (lo, hi, kind) if k == "ratio" else (axis(k, lo, kind == "log"), axis(k, hi, kind == "log"), kind)
               for k, (lo, hi, kind) in self.box.items()}
        dv = self.holdout_box[0] * (cr["vin"][1] - cr["vin"][0]) / (rr["vin"][1] - rr["vin"][0])
        dr = self.holdout_box[1] * (cr["vref"][1] - cr["vref"][0]) / (rr["vref"][1] - rr["vref"][0])
        ro = lambda pair: tuple(axis("ro", x, True) for x in pair)  # noqa: E731
        lo_f, hi_f, per_octave = self.loop_gain_band
        return replace(self, converter=conv, box=box, duration_ms=self.duration_ms * t,
                       soft_start_ms=tuple(x * ss for x in self.soft_start_ms), step_ms=times(self.step_ms),
                       back_ms=times(self.back_ms), light_ohm=ro(self.light_ohm), heavy_ohm=ro(self.heavy_ohm),
                       excitation_mV=tuple(x * conv.vmax / ref.vmax for x in self.excitation_mV),
                       holdout=tuple((axis("vin", v, False), axis("vref", r, False)) for v, r in self.holdout),
                       holdout_box=(dv, dr), loop_gain_band=(lo_f / t, hi_f / t, per_octave))

    def carried(self, settings: dict) -> dict:
        """Scenario settings written for the reference buck, for this recipe's converter (``carry_settings``)."""
        return carry_settings(self.converter, settings)

    def __post_init__(self) -> None:
        for name in ("episodes", "jobs", "steps", "epochs"):
            if getattr(self, name) < 1:
                raise RecipeError(f"recipe {self.name}: {name} must be >= 1")
        for axis, spec in self.box.items():
            self._check_axis(axis, spec)
        if self.loop_gain_weight_final is not None and self.loop_gain_weight_final < 0:
            raise RecipeError(f"recipe {self.name}: loop_gain_weight_final must be >= 0 (or None: constant)")
        if self.select_by not in ("closeness", "plan"):
            raise RecipeError(f"recipe {self.name}: select_by is 'closeness' or 'plan', got {self.select_by!r}")
        if self.dagger_rails not in ("keep", "drop"):
            raise RecipeError(f"recipe {self.name}: dagger_rails is 'keep' or 'drop', got {self.dagger_rails!r}")
        if self.precondition not in ("off", "inputs"):
            raise RecipeError(f"recipe {self.name}: precondition is 'off' or 'inputs', got {self.precondition!r}")
        if self.hidden not in ("relu", "leaky_relu"):
            raise RecipeError(f"recipe {self.name}: hidden is 'relu' or 'leaky_relu', got {self.hidden!r}")
        if self.output not in ("sigmoid", "clamp"):
            raise RecipeError(f"recipe {self.name}: output is 'sigmoid' or 'clamp', got {self.output!r}")
        if self.fit_loss not in ("mse", "bce"):
            raise RecipeError(f"recipe {self.name}: fit_loss is 'mse' or 'bce', got {self.fit_loss!r}")
        if self.accumulator_shift < 0:
            raise RecipeError(f"recipe {self.name}: accumulator_shift is an rms (duty), >= 0; "
                              f"got {self.accumulator_shift}")
        if self.label not in ("clock", "applied"):
            raise RecipeError(f"recipe {self.name}: label is 'clock' or 'applied', got {self.label!r}")
        if self.margin_weight < 0 or not 0 <= self.margin_floor_deg < 180:
            raise RecipeError(f"recipe {self.name}: margin_weight is >= 0 and margin_floor_deg in 0..180 degrees, got "
                              f"{self.margin_weight} and {self.margin_floor_deg}")
        if not 0 <= self.target_margin_deg < 180:
            raise RecipeError(f"recipe {self.name}: target_margin_deg is in 0..180 degrees, got {self.target_margin_deg}")
        if self.history_noise < 0:
            raise RecipeError(f"recipe {self.name}: history_noise is an rms (duty), >= 0; got {self.history_noise}")
        if not 0 <= self.select_guard < 1:
            raise RecipeError(f"recipe {self.name}: select_guard is a share of each limit in 0..1 (0.2: the last 20 %), "
                              f"got {self.select_guard}")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise RecipeError(f"recipe {self.name}: restarts is a number of runs, >= 1; got {self.restarts!r}")
        if self.restarts > 1 and not self.select_every:
            raise RecipeError(f"recipe {self.name}: restarts = {self.restarts} picks among the runs' selected "
                              "networks; give the recipe a selection (select_every > 0)")
        if not 0 <= self.select_edges <= 1:
            raise RecipeError(f"recipe {self.name}: select_edges is a share of the validation points in 0..1, got "
                              f"{self.select_edges}")
        if not 0 <= self.dagger_share <= 1:
            raise RecipeError(f"recipe {self.name}: dagger_share is a share in 0..1, got {self.dagger_share}")
        for scenario, weight in self.scenarios:
            get_scenario(scenario)
            if weight < 0:
                raise RecipeError(f"recipe {self.name}: the weight of {scenario} must be >= 0")
        parse_schedule(self.schedule)

    def _check_axis(self, axis: str, spec) -> None:
        """One axis of the training box: (low, high, "uniform" | "log"), low < high, a ratio inside (0, 1)."""
        example = "e.g. box={'ro': (5.0, 1000.0, 'log'), 'ratio': (0.2, 0.97, 'uniform')}"
        if axis not in BOX_AXES:
            raise RecipeError(f"recipe {self.name}: the box has no axis {axis!r}; its axes are {', '.join(BOX_AXES)} "
                              f"({example})")
        if not (isinstance(spec, tuple) and len(spec) == 3 and spec[2] in ("uniform", "log")
                and all(isinstance(x, (int, float)) for x in spec[:2])):
            raise RecipeError(f"recipe {self.name}: box axis {axis} is (low, high, 'uniform' or 'log'), got {spec!r} "
                              f"({example})")
        lo, hi, kind = spec
        if not lo < hi or (kind == "log" and lo <= 0) or (axis == "ratio" and not 0 < lo < hi < 1):
            raise RecipeError(f"recipe {self.name}: box axis {axis} needs low < high" +
                              (", both inside (0, 1): vref / vin" if axis == "ratio" else "") +
                              (" and low > 0 for a log draw" if kind == "log" else "") + f"; got {spec!r}")

    @property
    def seed_draw(self) -> bool:
        """True where episodes are the seed's: a start-up at a point from EpisodeParams.random, nothing else."""
        return not self.scenarios

    @property
    def updates(self) -> int:
        """Optimiser updates over the whole recipe (one per batch of ``jobs`` episodes)."""
        return -(-self.episodes // self.jobs)

    def lr_at(self, update: int) -> float:
        """The learning rate of the ``update``-th update (0-based): cosine from lr to lr_final."""
        if self.lr_final is None:
            return self.lr
        done = min(1.0, update / max(1, self.updates - 1))
        return self.lr_final + (self.lr - self.lr_final) * 0.5 * (1 + math.cos(math.pi * done))

    def loop_gain_weight_at(self, update: int) -> float:
        """The loop-gain term's weight at the ``update``-th update (0-based): a half cosine from loop_gain_weight to
        loop_gain_weight_final."""
        if self.loop_gain_weight_final is None:
            return self.loop_gain_weight
        done = min(1.0, update / max(1, self.updates - 1))
        w0, w1 = self.loop_gain_weight, self.loop_gain_weight_final
        return w0 + (w1 - w0) * 0.5 * (1 - math.cos(math.pi * done))

    def frequencies(self) -> np.ndarray:
        lo, hi, per_octave = self.loop_gain_band
        n = max(2, int(round(math.log2(hi / lo) * per_octave)) + 1)
        return np.geomspace(lo, hi, n)

    def gym(self, rng: np.random.Generator, episode: int) -> str:
        if episode <= self.dagger_after or not self.dagger_share:
            return "gym1"
        return "gym2" if rng.uniform() < self.dagger_share else "gym1"

    def plan(self, seed: int, episode: int, steps: int | None = None) -> EpisodePlan:
        """Episode ``episode``'s draw from rng([seed, episode]): the same on a resumed run."""
        rng = np.random.default_rng([seed, episode])
        steps = steps or self.steps
        if self.seed_draw:  # exactly the seed's draw (the gym from the schedule, nothing drawn for it)
            params = (EpisodeParams.random(rng, steps=steps) if self.converter is None else  # its ranges, same order
                      self.conv.params(**{k: float(rng.uniform(*self.conv.ranges[k])) for k in ("vin", "ro", "Lo", "vref")},
                                       steps=steps))
            return EpisodePlan(gym_for_episode(parse_schedule(self.schedule), episode), "startup", {}, params)
        gym = self.gym(rng, episode)
        names, weights = zip(*self.scenarios)
        for _ in range(200):
            scenario = str(rng.choice(names, p=np.asarray(weights) / sum(weights)))
            params = self.point(rng, steps)
            if params is None:
                continue
            settings = self._settings(rng, scenario)
            if get_scenario(scenario).problems(params, settings):
                continue
            if self.stable_teacher and teacher_unstable(params, scenario, settings):
                continue
            return EpisodePlan(gym, scenario, settings, scenario_params(params, scenario, settings))
        raise RecipeError(f"recipe {self.name}: no episode could be drawn in 200 tries (the hold-out boxes or step "
                          f"sizes leave no room in the training box)")

    def box_axis(self, axis: str) -> tuple[float, float, str]:
        """The training box along ``axis``: (low, high, draw); the converter's range, uniform, where the box leaves it."""
        return self.box.get(axis, (*self.conv.ranges[axis], "uniform"))

    def point(self, rng: np.random.Generator, steps: int, pin: dict[str, float] | None = None) -> EpisodeParams | None:
        """One operating point of the box with its parts and noise drawn (None: it fell in a held-out box or, with
        ``pin`` (vin or vref set after the draw; with a ratio axis the other follows the drawn ratio), outside it)."""
        def draw(lo: float, hi: float, kind: str) -> float:
            return float(rng.uniform(lo, hi) if kind == "uniform" else math.exp(rng.uniform(math.log(lo), math.log(hi))))
        axes = {k: self.box_axis(k) for k in ("vin", "ro", "Lo", "vref")}
        drawn = {k: draw(*spec) for k, spec in axes.items()}  # the seed's draw order
        if "ratio" in self.box:  # the ratio first, then vin uniform where vref = ratio x vin stays in vref's range
            ratio = draw(*self.box["ratio"])
            v_lo, v_hi = max(axes["vin"][0], axes["vref"][0] / ratio), min(axes["vin"][1], axes["vref"][1] / ratio)
            if v_lo > v_hi:
                return None
            drawn["vin"] = float(rng.uniform(v_lo, v_hi))
            drawn["vref"] = ratio * drawn["vin"]
        if pin:
            drawn |= pin
            if "ratio" in self.box:
                other = "vref" if "vin" in pin else "vin"
                drawn[other] = drawn["vin"] * ratio if other == "vref" else drawn["vref"] / ratio
            if not all(axes[k][0] <= drawn[k] <= axes[k][1] for k in ("vin", "vref")):
                return None
        dv, dr = self.holdout_box
        if drawn["vref"] >= drawn["vin"] or any(abs(drawn["vin"] - v) < dv and abs(drawn["vref"] - r) < dr
                                                 for v, r in self.holdout):
            return None
        for part, (kind, amount) in sorted(self.parts_tolerance.items()):
            nominal = getattr(self.conv, part) if part in COMPONENTS else None
            drawn[part] = (nominal * (1 + rng.uniform(-amount, amount)) if kind == "uniform"
                           else nominal * math.exp(rng.uniform(-math.log(amount), math.log(amount))))
        lo, hi = self.excitation_mV
        noise = float(rng.uniform(lo, hi)) if hi > 0 else 0.0
        return self.conv.params(**drawn, steps=steps, noise_mV=noise, noise_seed=int(rng.integers(2**31)),
                                delay_periods=self.delay_periods, adc_bits=self.adc_bits)

    def _settings(self, rng: np.random.Generator, scenario: str) -> dict:
        u = lambda r: float(rng.uniform(*r))  # noqa: E731
        sign = lambda: 1.0 if rng.uniform() < 0.5 else -1.0  # noqa: E731
        st = {"soft_start_ms": u(self.soft_start_ms)}
        if scenario == "startup":
            return st
        st |= {"t_step_ms": u(self.step_ms), "t_back_ms": u(self.back_ms), "duration_ms": self.duration_ms}
        if scenario == "refstep":
            st["step_pct"] = sign() * u(self.ref_step_pct)
        elif scenario == "linestep":
            st["step_pct"] = sign() * u(self.line_step_pct)
        elif scenario == "loadstep":
            st |= {"light_ohm": u(self.light_ohm), "heavy_ohm": u(self.heavy_ohm)}
        return st


def visited_points(params: EpisodeParams, scenario: str, settings: dict) -> list[EpisodeParams]:
    """The operating points an episode settles at: its start, and the point a reference or line step takes it to;
    a load step's two levels (its current-source load as the resistor that draws the same current at vref)."""
    if scenario == "refstep":
        return [params, replace(params, vref=params.vref * (1 + settings["step_pct"] / 100))]
    if scenario == "linestep":
        return [params, replace(params, vin=params.vin * (1 + settings["step_pct"] / 100))]
    if scenario == "loadstep":
        return [replace(params, ro=settings["light_ohm"]), replace(params, ro=settings["heavy_ohm"])]
    return [params]


def teacher_unstable(params: EpisodeParams, scenario: str, settings: dict) -> str:
    """Why the teacher's loop cannot be imitated at a point the episode visits ('' where it is stable at all of
    them): no periodic orbit, or an orbit whose linearised period map has an eigenvalue of modulus >= 1 (POP, sensor
    noise left out)."""
    from ..loopgain.pop import Loop, PopError, critical_pole, find_orbit
    for p in visited_points(replace(params, noise_mV=0.0), scenario, settings):
        try:
            loop = Loop("teacher", None, p)
            rho = critical_pole(loop, find_orbit(loop))
        except PopError as e:
            return str(e)
        if rho >= 1.0:
            return (f"the teacher's orbit at vin {p.vin:g} V, vref {p.vref:g} V, ro {p.ro:g} Ohm is unstable "
                    f"(critical pole {rho:.3f})")
    return ""


# The default plan's corners this recipe never trains near (README "train", docs/training.md): the two extremes of the
# conversion ratio the issue names and the centre.
HOLDOUT = ((150.0, 140.0), (250.0, 60.0), (200.0, 100.0))
TOLERANCE_DRAW = {"L1": ("uniform", 0.2), "C1": ("uniform", 0.2), "ESR": ("log", 2.0)}  # docs/plans/tolerances.toml

RECIPES = {r.name: r for r in (
    Recipe("seed", "the seed notebook's: gym1:300,gym2:200, soft starts at constant points, 200 full-batch Adam "
           "epochs at lr 1e-4 per episode"),
    Recipe("signoff", "reference, load and line steps and soft starts over the training box (ro 5..1000 Ohm: light loads "
           "in discontinuous conduction too), parts from the "
           "tolerance table, sensor noise the teacher labels, 30 % on-policy (gym2) episodes, a replay buffer and a "
           "loop-gain term matching the teacher's T(f), weights averaged, the network that misses fewest of the default plan's "
           "tests at validation points of the box kept (its corners never); corners near vin/vref 150/140, 250/60, "
           "200/100 held out",
           learner="signoff", episodes=1600, jobs=8, epochs=100, lr=1e-3, lr_final=1e-4,
           box={"ro": (5.0, 1000.0, "log")},
           scenarios=(("startup", 0.25), ("refstep", 0.35), ("loadstep", 0.2), ("linestep", 0.2)),
           soft_start_ms=(0.5, 4.0), parts_tolerance=TOLERANCE_DRAW, excitation_mV=(0.0, 100.0),
           dagger_share=0.3, dagger_after=40, holdout=HOLDOUT, replay=40, minibatch=512,
           loop_gain_weight=0.01, loop_gain_points=2, loop_gain_band=(50.0, 24e3, 3), holdout_box=(5.0, 5.0),
           select_every=40, select_after=800, select_by="plan", select_points=24, average=0.9, spice_check_every=400),
)}


def get_recipe(name: str | Recipe) -> Recipe:
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def with_settings(base: str, pairs: list[str]) -> Recipe:
    """Recipe ``base`` with ``NAME=VALUE`` settings changed (``--set``), named after them so a run records them."""
    import ast
    from dataclasses import fields
    recipe = get_recipe(base)
    if not pairs:
        return recipe
    known = {f.name for f in fields(Recipe)} - {"name", "description"}
    changes = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or key not in known:
            raise RecipeError(f"--set {pair!r}: write NAME=VALUE with NAME one of {', '.join(sorted(known))}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            if isinstance(getattr(recipe, key), str) and text.strip().isidentifier():
                value = text.strip()  # a word for a text setting: select_by=closeness
            else:
                raise RecipeError(f"--set {pair!r}: {text!r} is not a Python literal (a number, [low, high], "
                                  "a quoted string, {...})") from None
        changes[key] = _as_setting(getattr(recipe, key), value, pair)
    return replace(recipe, name=f"{base}+" + ",".join(p.replace(" ", "") for p in pairs), **changes)


def _as_setting(current, value, pair: str):
    """``value`` in the type of the setting it replaces (lists as tuples); a mismatch is a RecipeError."""
    if isinstance(current, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"--set {pair!r}: this setting is a list, e.g. [0, 50]")
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise RecipeError(f"--set {pair!r}: give True or False")
        return value
    if isinstance(current, (int, float)) and isinstance(value, bool):
        raise RecipeError(f"--set {pair!r}: give a number")
    if isinstance(current, float) and isinstance(value, (int, float)):
        return float(value)
    if isinstance(current, int) and isinstance(value, int):
        return value
    if isinstance(current, dict) and isinstance(value, dict):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if current is None or isinstance(value, type(current)):
        return value
    raise RecipeError(f"--set {pair!r}: expected {type(current).__name__}, got {type(value).__name__}")


def ablation(base: str, **changes) -> Recipe:
    """Recipe ``base`` with some ingredients changed (the ablation's rows; give it a ``name`` saying which)."""
    return replace(get_recipe(base), **changes)
