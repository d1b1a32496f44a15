"""``buckbi testplan init --converter FILE``: a sign-off plan for a converter, as the default plan is for the
reference's — corners from its ranges (continuous and discontinuous conduction), the default plan's tests with times
scaled to its clock, and each limit one its teacher meets there (measured now on the fast engine), commented."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .converter import Converter

# The default plan's event times in control periods (40, 60, 80 ms at 50 kHz), its long run (50,000 periods).
STEP_PERIODS = (2000, 3000, 4000)
LONGRUN_PERIODS = 50_000
MAX_DUTY = 0.93  # a corner's vref at most this share of its vin (the default plan's 140 V at 150 V)
# Common specifications a limit is never tighter than (the default plan's): what a designer writes down anyway.
FLOORS = {"overshoot_pct": 5.0, "dc_error_pct": 1.0, "ripple_pct": 2.0, "step_dev_pct": 6.0, "recovery_ms": 0.0,
          "settle_ms": 0.0, "load_reg_pct_per_A": 0.1, "line_reg_pct_per_V": 0.025}
MARGIN = 1.25  # an upper limit: the teacher's worst x this, rounded up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n
PHASE_MARGIN_SPEC, GAIN_MARGIN_SPEC = 45.0, 6.0  # the common specs; lowered to what the teacher keeps, with a note


@dataclass(frozen=True)
class TestSpec:
    """One test of the generated plan: scenario, its settings, which corners, the figures it limits."""

    name: str
    scenario: str
    settings: dict
    corners: list[str]
    figures: tuple[str, ...]
    comment: str


def nice_up(x: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n at or above x."""
    if not x > 0 or not math.isfinite(x):
        return x
    e = math.floor(math.log10(x))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * 10 ** e >= x * (1 - 1e-12):
            return round(m * 10 ** e, 12)
    return 10 ** (e + 1)


def plan_corners(conv: Converter) -> dict[str, dict[str, float]]:
    """vin {low, middle, high} x vref {10 % into the range from each end, middle} x load {light, half, full}: full
    at the range's lowest ro, half at twice it, light in discontinuous conduction (Iout = Icrit / 2), Lo at its centre."""
    (vl, vh), (rl, rh) = conv.ranges["vin"], conv.ranges["vref"]
    vins = (vl, (vl + vh) / 2, vh)
    span = rh - rl
    vrefs = (rl + 0.1 * span, (rl + rh) / 2, rh - 0.1 * span)
    ro_full = conv.ranges["ro"][0]
    out = {}
    for vin in vins:
        for vref in vrefs:
            vref = min(vref, MAX_DUTY * vin)
            d = vref / vin
            icrit = (vin - vref) * d / conv.fsw / (2 * conv.L1)
            light = 2 * vref / icrit
            for load, ro in (("light", light), ("half", 2 * ro_full), ("full", ro_full)):
                name = f"vin{vin:.4g}-vref{vref:.3g}-{load}".replace(".", "p")  # a TOML table name
                out[name] = {"vin": round(vin, 6), "vref": round(vref, 6), "ro": float(f"{ro:.3g}"),
                             "Lo": float(f"{conv.centre['Lo']:.3g}")}
    return out


def plan_tests(conv: Converter, corners: dict[str, dict]) -> list[TestSpec]:
    """The default plan's tests for the converter's corners, event times in the default plan's control periods."""
    ms = lambda periods: round(periods / conv.fsw * 1e3, 6)  # noqa: E731
    steps = {"t_step_ms": ms(STEP_PERIODS[0]), "t_back_ms": ms(STEP_PERIODS[1]), "duration_ms": ms(STEP_PERIODS[2])}
    soft = {"soft_start_ms": conv.soft_start_ms}
    names = list(corners)
    half = [n for n in names if n.endswith("-half")]
    vmax, top = conv.vmax, max(c["vin"] for c in corners.values())
    up = [n for n in names if corners[n]["vin"] * 1.2 <= vmax and corners[n]["vin"] < top]
    down = [n for n in names if corners[n]["vin"] == top]
    r = conv.ranges["ro"]
    when = f"at {steps['t_step_ms']:g} ms, back at {steps['t_back_ms']:g} ms ({STEP_PERIODS[0]} and {STEP_PERIODS[1]} periods)"
    tests = [
        TestSpec("startup", "startup", soft, names, ("overshoot_pct", "settle_ms", "dc_error_pct", "ripple_pct"),
                 f"the soft start ({conv.soft_start_ms:g} ms), 2048 periods"),
        TestSpec("loadstep", "loadstep", soft | steps | {"light_ohm": r[1], "heavy_ohm": r[0]}, half,
                 ("step_dev_pct", "recovery_ms", "dc_error_pct", "load_reg_pct_per_A"),
                 f"vref/{r[1]:g} -> vref/{r[0]:g} A {when}"),
        TestSpec("linestep-up", "linestep", soft | steps | {"step_pct": 20.0}, up,
                 ("step_dev_pct", "recovery_ms", "line_reg_pct_per_V"), f"vin -> 1.2 vin {when} (within vmax)"),
        TestSpec("linestep-down", "linestep", soft | steps | {"step_pct": -20.0}, down,
                 ("step_dev_pct", "recovery_ms", "line_reg_pct_per_V"), f"vin -> 0.8 vin {when}"),
        TestSpec("refstep", "refstep", soft | steps | {"step_pct": -10.0}, names, ("overshoot_pct", "settle_ms"),
                 f"vref -> 0.9 vref {when}"),
        TestSpec("loopgain", "fra", {"method": "pop", "f_start_Hz": float(f"{conv.fsw / 5000:.3g}"),
                                     "f_end_Hz": conv.fsw / 2, "per_octave": 3.0}, names,
                 ("phase_margin_deg", "gain_margin_dB"), "POP + AC on the fast model (method = \"inject\" in SPICE)"),
        TestSpec("longrun", "longrun", soft | {"duration_ms": ms(LONGRUN_PERIODS)}, half[1::3] or half[:1],
                 ("max_dev_pct", "max_abs_input"), f"{LONGRUN_PERIODS} periods after the soft start"),
    ]
    return [t for t in tests if t.corners]


def _plan_data(conv: Converter, corners: dict, tests: list[TestSpec]) -> dict:
    data = {"plan": {"name": f"{conv.name}-signoff"}, "corners": corners, "tests": []}
    for t in tests:
        data["tests"].append({"name": t.name, "scenario": t.scenario, "corners": t.corners, **t.settings})
    return data


def teacher_values(conv: Converter, corners: dict, tests: list[TestSpec], jobs: int = 2) -> dict:
    """Per test and figure the teacher's value at each of its corners, [(value, corner)] (the fast engine)."""
    from concurrent.futures import ThreadPoolExecutor

    from ...testplan.cells import run_cell
    from ...testplan.plan import parse_plan
    plan = parse_plan(_plan_data(conv, corners, tests), f"<init {conv.name}>", conv.source or None)
    cells = plan.cells()
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda tc: run_cell(None, tc[0], tc[1], "teacher", "pwl"), cells))
    values: dict = {t.name: {f: [] for f in t.figures} for t in tests}
    for (test, corner), res in zip(cells, results):
        for fig in values[test.name]:
            values[test.name][fig].append((float(res["figures"].get(fig, math.nan)), corner.name))
    reach = None
    for name, figs in values.items():
        if "max_abs_input" in figs:  # the teacher has no NN inputs: what they reach in the rows training fits
            reach = reach or teacher_input_reach(plan, jobs)
            figs["max_abs_input"] = reach
    return values


def teacher_input_reach(plan, jobs: int = 2) -> list[tuple[float, str]]:
    """Per corner of the plan's start-up test, the largest |NN input| while the teacher drives (gym 1, the rows a
    network is trained on): the room its inputs have in closed loop, as the default plan's long-run limit has."""
    import tempfile

    import numpy as np

    from ...episodes.run import run_episodes
    from ...nn.checkpoint import fresh_actor
    from ...testplan.plan import cell_params
    startup = next(t for t in plan.tests if t.scenario == "startup")
    corners = [c for t, c in plan.cells() if t is startup]
    with tempfile.TemporaryDirectory(prefix="buckbi-init-") as tmp:  # any network: in gym 1 its duty is not applied
        eps = run_episodes("gym1", fresh_actor(), [cell_params(startup, c) for c in corners], tmp, "pwl",
                           scenario="startup", settings=startup.settings, parallel=jobs)
    out = []
    for c, ep in zip(corners, eps):
        if isinstance(ep, Exception):
            raise ep
        out.append((float(np.abs(ep.x).max()), c.name))
    return out


def limits_from(values: dict) -> dict:
    """Each test's limits, (value, where it came from); NaN where the teacher gives none (the comment says so)."""
    out = {}
    for test, figs in values.items():
        out[test] = {}
        for fig, vals in figs.items():
            if fig == "max_abs_input":  # never below the default plan's 5 (its inputs reach 3.2 there)
                v, corner = max(vals)
                lim = max(5.0, nice_up(v * MARGIN))
                out[test][fig] = (lim, f"every NN input within this (they are / vmax): with the teacher driving (gym 1, "
                                       f"the rows training fits) they reach {v:.3g} at {corner}; x {MARGIN:g}, never below "
                                       "the default plan's 5 (a drifting accumulator fails)")
                continue
            if fig == "max_dev_pct":
                out[test][fig] = (2.0, "Vout within the 2 % band from judge_from_ms on (the default plan's)")
                continue
            lower = fig in ("phase_margin_deg", "gain_margin_dB")
            missing = [c for v, c in vals if math.isnan(v) or (not lower and v == math.inf)]
            if missing:
                key = f"min_{fig}" if lower else fig
                out[test][key] = (math.nan, f"the teacher has no finite value at {', '.join(missing[:3])}: no limit "
                                            "is written; set one yourself")
                continue
            v, corner = (min if lower else max)(vals)
            if fig == "phase_margin_deg":
                lim = PHASE_MARGIN_SPEC if v >= PHASE_MARGIN_SPEC else float(math.floor(v) - 1)
                out[test]["min_phase_margin_deg"] = (lim, ("the common spec" if lim == PHASE_MARGIN_SPEC else
                                                           "below the common 45 deg") + f"; teacher's least {v:.1f} deg at {corner}")
            elif fig == "gain_margin_dB":
                lim = GAIN_MARGIN_SPEC if v >= GAIN_MARGIN_SPEC else max(0.5, math.floor(v * 2) / 2 - 0.5)
                least = "inf (its phase never reaches -180 deg)" if v == math.inf else f"{v:.2f} dB"
                out[test]["min_gain_margin_dB"] = (lim, ("the common spec" if lim == GAIN_MARGIN_SPEC else
                                                         "below the common 6 dB") + f"; teacher's least {least} at {corner}")
            else:
                lim = max(FLOORS.get(fig, 0.0), nice_up(v * MARGIN))
                out[test][fig] = (lim, f"teacher's worst {v:.3g} at {corner}" +
                                  (" (the common spec is looser)" if lim == FLOORS.get(fig) else ""))
    return out


def plan_text(conv: Converter, corners: dict, tests: list[TestSpec], limits: dict, source: str) -> str:
    """The plan as TOML, each number commented with where it came from."""
    def val(x) -> str:
        if isinstance(x, str):
            return f'"{x}"'
        if isinstance(x, list):
            return "[" + ", ".join(val(v) for v in x) + "]"
        return f"{x:g}" if isinstance(x, float) else str(x)
    head = [f"# Sign-off plan for converter {conv.name} ({source}), written by buckbi testplan init: edit it.",
            f"# Corners: vin x vref x load from [ranges]: full ro = {conv.ranges['ro'][0]:g} Ohm (the range's lowest), "
            "half = twice it,", "#   light = discontinuous conduction: ro = 2 vref / Icrit, Icrit = (vin - vref) D T / (2 L1).",
            f"# Times: the default plan's in control periods at {conv.fsw:g} Hz. Limits: each one the teacher meets at "
            f"every corner", f"#   (measured now on the fast engine), its worst x {MARGIN:g} rounded up, never tighter than "
            "the default plan's common specs.", "",
            "[plan]", f'name = "{conv.name}-signoff"', f'converter = "{source}"', ""]
    lines = head
    for name, c in corners.items():
        lines += [f"[corners.{name}]"] + [f"{k} = {val(float(v))}" for k, v in c.items()] + [""]
    for t in tests:
        lines += ["[[tests]]", f'name = "{t.name}"', f'scenario = "{t.scenario}"            # {t.comment}']
        lines += [f"{k} = {val(v)}" for k, v in t.settings.items()]
        lines.append(f"corners = {val(t.corners)}")
        lim = limits[t.name]
        for k, (v, why) in lim.items():
            lines.append(f"# {k}: {why}")
        lines.append("limits = { " + ", ".join(f"{k} = {val(float(v))}" for k, (v, _) in lim.items()
                                               if math.isfinite(v)) + " }")
        lines.append("")
    return "\n".join(lines)


def write_plan(conv: Converter, out: str | Path, jobs: int = 2) -> Path:
    """Measure the teacher and write the plan to ``out`` (refused where a file is there: nothing is overwritten)."""
    from ...testplan.plan import PlanError
    out = Path(out)
    if out.exists():
        raise PlanError(f"{out} exists: choose another --out, or remove it (a plan you edited is not overwritten)")
    corners = plan_corners(conv)
    tests = plan_tests(conv, corners)
    limits = limits_from(teacher_values(conv, corners, tests, jobs))
    import os

    from .converter import EXAMPLES
    shipped = {str(v): k for k, v in EXAMPLES.items()}
    source = shipped.get(conv.source) or os.path.relpath(conv.source, out.resolve().parent)
    text = plan_text(conv, corners, tests, limits, source)
    import tomllib

    from ...testplan.plan import parse_plan
    from ...util.fsutil import atomic_write_text
    parse_plan(tomllib.loads(text), str(out), conv.source or None)  # what it writes, it reads back
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)
    return out
