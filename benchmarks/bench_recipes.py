"""The training recipes from scratch, each ingredient added in turn (the ablation), and the sign-off recipe's spread
over seeds: each network trained by ``buckbi train`` on the fast engine, then judged by the default plan and the
Monte Carlo load step of docs/plans/tolerances.toml.

    python benchmarks/bench_recipes.py [--rows seed,steps,...] [--seeds 1,2,3,4] [--runs reports/recipes] [--reuse]
                                       [--set NAME=VALUE ...] [--markdown]

Times on this machine (2 cores, two rows at once): ~7 min per sign-off row, ~3 min per plan and yield.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

TOL_PLAN = Path(__file__).resolve().parent.parent / "docs" / "plans" / "tolerances.toml"
# (row, what it adds, the train command's recipe arguments): cumulative, each row the one above plus one ingredient
ROWS = {
    "seed": ("the seed's schedule", ["--recipe", "seed"]),
    "steps": ("+ steps, soft starts, parts and light loads over the box; replay, minibatches, lr decay",
              ["--recipe", "signoff", "--set", "excitation_mV=[0,0]", "--set", "dagger_share=0",
               "--set", "loop_gain_weight=0"]),
    "excitation": ("+ sensor-noise excitation (0..100 mV rms)",
                   ["--recipe", "signoff", "--set", "dagger_share=0", "--set", "loop_gain_weight=0"]),
    "dagger": ("+ 30 % on-policy episodes (DAgger)", ["--recipe", "signoff", "--set", "loop_gain_weight=0"]),
    "signoff": ("+ the loop-gain term (= --recipe signoff)", ["--recipe", "signoff"]),
}


def buckbi(*args: str) -> float:
    """Run a buckbi command; returns its wall time. FAIL (exit 1) is a result, anything above an error."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"buckbi {' '.join(args)}: exit {res.returncode}: {res.stderr[-2000:]}")
    return time.perf_counter() - t0


def trained(runs: Path, name: str, recipe_args: list[str], seed: int, reuse: bool) -> tuple[Path, float]:
    """Train one row from scratch (or take the run a previous call left, with its recorded time)."""
    work = runs / f"{name}-seed{seed}"
    stamp = work / "train_seconds.txt"
    if not (reuse and stamp.exists()):
        wall = buckbi("train", *recipe_args, "--simulator", "pwl", "--spice-check-every", "0", "--seed", str(seed),
                      "--workdir", str(work), "--fresh", "--quiet")
        stamp.write_text(f"{wall:.1f}\n")
    selected = work / "actor_selected.pth"  # the recipe's model selection, where it has one
    return (selected if selected.exists() else work / "actor_final.pth"), float(stamp.read_text())


def judged(actor: Path, out: Path, reuse: bool) -> dict:
    """The default plan's verdicts and figures, and the Monte Carlo load-step yield, for one network."""
    from buckbi.testplan.report import cell_verdicts
    plan, tol = out / "plan", out / "tolerances"
    if not (reuse and (plan / "results.csv").exists()):
        buckbi("testplan", "default", "--actor", str(actor), "--simulator", "pwl", "--quiet", "--out", str(plan))
    if not (reuse and (tol / "results.csv").exists()):
        buckbi("testplan", str(TOL_PLAN), "--actor", str(actor), "--simulator", "pwl", "--quiet", "--only",
               "loadstep-mc", "--out", str(tol))
    r = pd.read_csv(plan / "results.csv")
    text = [c for c in r.columns if r[c].dtype == object or c in ("draw", "limit", "error", "verdict")]
    r[text] = r[text].astype(object).fillna("").astype(str)  # as the report reads them (empty, not NaN)
    r["value"] = pd.to_numeric(r["value"], errors="coerce")
    nn = r[r["controller"] == "nn"]
    v = cell_verdicts(r)
    lines = v[v["controller"] == "nn"]
    pm = nn[(nn["test"] == "loopgain") & (nn["figure"] == "phase_margin_deg")]["value"]
    over = nn[(nn["test"] == "refstep") & (nn["figure"] == "overshoot_pct")]["value"]
    t = pd.read_csv(tol / "results.csv")
    y = pd.to_numeric(t[(t["figure"] == "yield_pct") & (t["controller"] == "nn")]["value"], errors="coerce")
    return {"lines": f"{int((lines['verdict'] == 'pass').sum())}/{len(lines)}",
            "least PM (deg)": _worst(pm, min), "worst ref-step overshoot (%)": _worst(over, max),
            "load-step yield (%)": f"{y.min():.1f}..{y.max():.1f}" if len(y) else "n/a"}


def _worst(values: pd.Series, pick) -> str:
    """The worst value; a corner where the figure could not be measured (no crossover, never settled) is named."""
    ok = values[np.isfinite(values)]
    text = f"{pick(ok):.1f}" if len(ok) else "none"
    return text + (f" ({len(values) - len(ok)} unmeasured)" if len(ok) < len(values) else "")


def row(runs: Path, name: str, seed: int, reuse: bool, sets: tuple[str, ...] = ()) -> dict:
    what, recipe_args = ROWS[name]
    recipe_args = [*recipe_args, *(a for pair in sets for a in ("--set", pair))]
    what = what + "".join(f"; {pair}" for pair in sets)
    actor, wall = trained(runs, name, recipe_args, seed, reuse)
    return {"recipe": name, "adds": what, "seed": seed, **judged(actor, runs / f"{name}-seed{seed}" / "judged", reuse),
            "training (min)": f"{wall / 60:.1f}",
            "command": "buckbi train " + " ".join(recipe_args) + f" --simulator pwl --seed {seed}"}


def markdown(df: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which buckbi does not install)."""
    cells = [list(df.columns)] + df.astype(str).values.tolist()
    lines = ["| " + " | ".join(map(str, row)) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "---|" * len(df.columns), *lines[1:]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS), help=f"ablation rows (default {','.join(ROWS)})")
    ap.add_argument("--seeds", default="1", help="seeds of every row (the spread: --rows signoff --seeds 1,2,3,4)")
    ap.add_argument("--runs", default="reports/recipes", help="folder of the runs")
    ap.add_argument("--reuse", action="store_true", help="take the runs a previous call left")
    ap.add_argument("--parallel", type=int, default=2, help="rows at once (default 2: one per core)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a recipe setting added to every row (repeatable; an experiment on top of the rows)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    todo = [(n, int(s)) for n in args.rows.split(",") for s in args.seeds.split(",")]
    with ThreadPoolExecutor(args.parallel) as pool:
        table = pd.DataFrame(pool.map(lambda t: row(runs, t[0], t[1], args.reuse, tuple(args.set)), todo))
    print(markdown(table) if args.markdown else table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
