"""Make the measured tables of the docs from runs of buckbi's own commands, and write them in place.

``python docs/make_tables.py [plan|tolerances|deployment|margins|evaluate ...] [--runs reports/tables] [--reuse]``

Each table sits in a doc between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; the line above it names this
command. Every table runs its commands first (``--reuse``: take the results folders a previous run left), so a table
is always what the code of the checkout measures. Times: plan ~2 min, tolerances ~3 min, deployment ~1 min, margins
~1 min on the fast simulator (2 cores); evaluate ~10 min in ngspice.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DOCS = Path(__file__).resolve().parent
NETWORKS = {"pretrained": "pretrained", "seed-pretrained": "seed-pretrained", "published": "published",
            "ngspice-trained": str(DOCS / "actors" / "ngspice_trained.pth")}


def buckbi(*args: str) -> None:
    """Run a buckbi command; a verdict of FAIL (exit 1) is a result, anything else above is an error."""
    res = subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"buckbi {' '.join(args)}: exit {res.returncode}: {res.stderr[-2000:]}")


def plan_results(plan: str, actor: str, out: Path, reuse: bool) -> pd.DataFrame:
    if not (reuse and (out / "results.csv").exists()):
        buckbi("testplan", plan, "--actor", actor, "--simulator", "pwl", "--quiet", "--out", str(out))
    return read_results(out)


def read_results(out: Path) -> pd.DataFrame:
    """A plan run's results.csv as the report reads it (text columns empty, not NaN; values numeric)."""
    table = pd.read_csv(out / "results.csv")
    text = [c for c in table.columns if table[c].dtype == object or c in ("draw", "limit", "error", "verdict")]
    table[text] = table[text].astype(object).fillna("").astype(str)
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    return table


def md(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False))


# --- tables ---------------------------------------------------------------------------------------------------------

def plan_table(runs: Path, reuse: bool) -> str:
    """The default plan on the fast simulator: corners passed per test, teacher and each network, what fails."""
    from buckbi.testplan.report import cell_verdicts
    cols: dict[str, dict[str, str]] = {}
    for name, actor in NETWORKS.items():
        v = cell_verdicts(plan_results("default", actor, runs / f"plan-{name}", reuse))
        for who, label in (("teacher", "teacher"), ("nn", name)):
            if who == "teacher" and "teacher" in cols:
                continue
            part = v[v["controller"] == who]
            for test, t in part.groupby("test", sort=False):
                fails: dict[str, int] = {}
                for why in t.loc[t["verdict"] == "fail", "why"]:
                    for item in why.split("; "):
                        fig = item.split(" ")[0]
                        fails[fig] = fails.get(fig, 0) + 1
                text = f"{int((t['verdict'] == 'pass').sum())}/{len(t)}"
                if fails:
                    text += " (" + ", ".join(f"{k} at {n} corners" for k, n in fails.items()) + ")"
                cols.setdefault(label, {})[test] = text
    tests = list(cols["teacher"])
    return md(pd.DataFrame({"test": tests} | {label: [c.get(t, "") for t in tests] for label, c in cols.items()}))


# (test, figure, better when "lower" | "higher")
SHIPPED_FIGURES = (("startup", "overshoot_pct", "lower"), ("startup", "settle_ms", "lower"),
                   ("startup", "dc_error_pct", "lower"), ("loadstep", "step_dev_pct", "lower"),
                   ("loadstep", "recovery_ms", "lower"), ("linestep-up", "step_dev_pct", "lower"),
                   ("linestep-down", "step_dev_pct", "lower"), ("refstep", "overshoot_pct", "lower"),
                   ("refstep", "settle_ms", "lower"), ("loopgain", "crossover_Hz", "higher"),
                   ("loopgain", "phase_margin_deg", "higher"), ("loopgain", "gain_margin_dB", "higher"))


def shipped_table(runs: Path, reuse: bool) -> str:
    """The shipped network beside the teacher on the default plan, figure by figure: each one's range over the corners
    (loop gain: continuous conduction and light load apart) and at how many corners the network has the better one."""
    from buckbi.testplan.report import cell_verdicts
    r = plan_results("default", "pretrained", runs / "plan-pretrained", reuse)
    v = cell_verdicts(r)
    rows = []
    for test, fig, better in SHIPPED_FIGURES:
        t = r[(r["test"] == test) & (r["figure"] == fig)]
        groups = ([("continuous conduction", ~t["corner"].str.endswith("-light")),
                   ("light load", t["corner"].str.endswith("-light"))] if test == "loopgain" else [("all", t["corner"] != "")])
        for where, mask in groups:
            part = t[mask]
            nn = part[part["controller"] == "nn"].set_index("corner")["value"]
            te = part[part["controller"] == "teacher"].set_index("corner")["value"]
            both = nn.index.intersection(te.index)
            wins = int(((nn[both] < te[both]) if better == "lower" else (nn[both] > te[both])).sum())
            span = lambda s: f"{s.min():.3g}..{s.max():.3g}" if s.notna().any() else "none"  # noqa: E731
            missing = lambda s: f" ({int(s.isna().sum())} unmeasured)" if s.isna().any() else ""  # noqa: E731
            lines = v[(v["test"] == test) & (v["controller"] == "nn") & v["corner"].isin(both)]
            rows.append({"test": test, "figure": f"{fig} ({better} is better)", "corners": f"{where} ({len(both)})",
                         "network": span(nn[both]) + missing(nn[both]), "teacher": span(te[both]) + missing(te[both]),
                         "network better at": f"{wins} of {len(both)}",
                         "network's lines passed": f"{int((lines['verdict'] == 'pass').sum())} of {len(lines)}"})
    return md(pd.DataFrame(rows))


NGSPICE_FIGURES = (("startup", "overshoot_pct", "start-up overshoot %"), ("startup", "settle_ms", "start-up settling ms"),
                   ("startup", "dc_error_pct", "start-up DC error %"), ("loadstep", "step_dev_pct", "load-step deviation %"),
                   ("loadstep", "recovery_ms", "load-step recovery ms"),
                   ("refstep", "overshoot_pct", "reference-step overshoot % of the step"),
                   ("refstep", "settle_ms", "reference-step settling ms"), ("loopgain", "crossover_Hz", "crossover Hz"),
                   ("loopgain", "phase_margin_deg", "phase margin deg"))


def ngspice_table(runs: Path, reuse: bool) -> str:
    """docs/plans/signoff-ngspice.toml in ngspice (~10-35 min): network / teacher per figure and corner, and the lines."""
    from buckbi.testplan.report import cell_verdicts
    out = runs / "signoff-ngspice"
    if not (reuse and (out / "results.csv").exists()):
        buckbi("testplan", str(DOCS / "plans" / "signoff-ngspice.toml"), "--actor", "pretrained", "--simulator",
               "ngspice", "--jobs", "1", "--quiet", "--out", str(out))
    r = read_results(out)
    corners = list(dict.fromkeys(r["corner"]))
    v = cell_verdicts(r)
    rows = []
    for test, fig, label in NGSPICE_FIGURES:
        row = {"figure": label}
        for c in corners:
            pick = lambda who: r[(r["test"] == test) & (r["corner"] == c) & (r["controller"] == who)  # noqa: E731
                                 & (r["figure"] == fig)]["value"]
            row[c] = " / ".join(f"{float(x.iloc[0]):.3g}" if len(x) else "-" for x in (pick("nn"), pick("teacher")))
        rows.append(row)
    lines = lambda c, who: v[(v["corner"] == c) & (v["controller"] == who)]  # noqa: E731
    rows.append({"figure": "lines passed"} | {c: " / ".join(f"{int((lines(c, w)['verdict'] == 'pass').sum())} of "
                                                           f"{len(lines(c, w))}" for w in ("nn", "teacher"))
                                              for c in corners})
    return md(pd.DataFrame(rows))


def tolerance_table(runs: Path, reuse: bool) -> str:
    """docs/plans/tolerances.toml: the yield per test and corner, each network and the teacher."""
    rows: dict[tuple, dict] = {}
    for name in ("pretrained", "seed-pretrained", "ngspice-trained"):
        t = plan_results(str(DOCS / "plans" / "tolerances.toml"), NETWORKS[name], runs / f"tol-{name}", reuse)
        y = t[t["figure"] == "yield_pct"]
        for r in y.itertuples():
            key = (r.test, r.corner)
            rows.setdefault(key, {"test": r.test, "corner": r.corner})
            rows[key][name if r.controller == "nn" else "teacher"] = f"{float(r.value):.1f}"
    return md(pd.DataFrame(rows.values())[["test", "corner", "pretrained", "seed-pretrained", "ngspice-trained", "teacher"]])


def deployment_table(runs: Path, reuse: bool) -> str:
    """docs/plans/deployment.toml: each figure's range over the corners, per non-ideality (min..max)."""
    figures = {"startup": ("overshoot_pct", "settle_ms", "dc_error_pct"), "loadstep": ("step_dev_pct", "recovery_ms"),
               "loopgain": ("phase_margin_deg", "gain_margin_dB")}
    kinds = {"ideal": "ideal", "adc10": "10-bit ADC", "delay1": "1-period delay", "adc10delay1": "ADC and delay",
             "int8": "int8 weights", "noise50": "50 mV noise"}
    out = []
    results = {n: plan_results(str(DOCS / "plans" / "deployment.toml"), NETWORKS[n], runs / f"dep-{n}", reuse)
               for n in ("pretrained", "seed-pretrained", "ngspice-trained")}
    for label, t, who in [("pretrained", results["pretrained"], "nn"),
                          ("seed-pretrained", results["seed-pretrained"], "nn"),
                          ("ngspice-trained", results["ngspice-trained"], "nn"),
                          ("teacher", results["seed-pretrained"], "teacher")]:
        for test, figs in figures.items():
            for fig in figs:
                row = {"controller": label, "figure (3 corners)": f"{test} {fig}"}
                for key, col in kinds.items():
                    v = t[(t["test"] == f"{test}-{key}") & (t["controller"] == who) & (t["figure"] == fig)]
                    vals = pd.to_numeric(v["value"], errors="coerce").to_numpy()
                    ok = vals[~np.isnan(vals)]
                    row[col] = (f"{np.min(ok):.3g}..{np.max(ok):.3g}" if len(ok) else "not measured") if len(vals) else "—"
                    if 0 < len(ok) < len(vals):  # e.g. no crossover where the delayed loop oscillates
                        row[col] += f" (none at {len(vals) - len(ok)} of {len(vals)})"
                out.append(row)
    return md(pd.DataFrame(out))


def margins_table(runs: Path, reuse: bool) -> str:
    """The 6 held-out points of ``evaluate --seed 1``: crossover / phase margin / gain margin (at Hz)."""
    marg = {}
    for name in ("pretrained", "seed-pretrained", "published"):
        out = runs / f"fra-{name}"
        if not (reuse and (out / "margins.csv").exists()):
            buckbi("evaluate", "--actor", NETWORKS[name], "--scenario", "fra", "--simulator", "pwl", "--out", str(out))
        marg[name] = pd.read_csv(out / "margins.csv")
    rows = []
    for k in sorted(marg["seed-pretrained"]["point"].unique()):
        row = {"point": int(k)}
        for name, src, who in (("pretrained", marg["pretrained"], "nn"),
                               ("seed-pretrained", marg["seed-pretrained"], "nn"), ("published", marg["published"], "nn"),
                               ("teacher", marg["seed-pretrained"], "teacher")):
            r = src[(src["point"] == k) & (src["controller"] == who)].iloc[0]
            gm = f"{r.gain_margin_dB:.1f} ({r.gain_margin_Hz:.0f})" if np.isfinite(r.gain_margin_dB) else "-"
            row[f"{name}: fc Hz / PM deg / GM dB (at Hz)"] = f"{r.crossover_Hz:.0f} / {r.phase_margin_deg:.1f} / {gm}"
        rows.append(row)
    return md(pd.DataFrame(rows))


def evaluate_table(runs: Path, reuse: bool, simulator: str = "ngspice") -> str:
    """The 6 held-out points in ngspice, start-up and load step: NN beside teacher."""
    parts = []
    for scenario in ("startup", "loadstep"):
        frames = {}
        for name in ("seed-pretrained", "published", "ngspice-trained"):  # (the signoff network: docs/training.md)
            out = runs / f"eval-{scenario}-{name}"
            if not (reuse and (out / "evaluate.csv").exists()):
                buckbi("evaluate", "--actor", NETWORKS[name], "--scenario", scenario, "--simulator", simulator,
                       "--out", str(out))
            frames[name] = pd.read_csv(out / "evaluate.csv")
        base = frames["seed-pretrained"]
        rows = []
        for i, r in base.iterrows():
            row = {"point": int(r.point), "vin V": f"{r.vin:.1f}", "vref V": f"{r.vref:.1f}"}
            for name, f in list(frames.items()) + [("teacher", base)]:
                who = "teacher" if name == "teacher" else "nn"
                x = f.iloc[i]
                if scenario == "startup":
                    row[name] = f"{x[f'{who}_sse_%']:.2f} / {x[f'{who}_overshoot_%']:.2f} / {x[f'{who}_settle_ms']:.2f}"
                else:
                    row[name] = (f"{x[f'{who}_up_dev_%']:.2f} / {x[f'{who}_up_rec_ms']:.2f}; "
                                 f"{x[f'{who}_down_dev_%']:.2f} / {x[f'{who}_down_rec_ms']:.2f}")
            rows.append(row)
        title = ("Start-up: steady-state error % / overshoot % / settling ms" if scenario == "startup" else
                 "Load step: up: deviation % / recovery ms; down: the same")
        parts.append(f"{title}\n\n{md(pd.DataFrame(rows))}")
    return "\n\n".join(parts)


def startup_table(runs: Path, reuse: bool) -> str:
    """benchmarks/bench_startup.py against the commit before the lazy imports (a git worktree in --runs)."""
    before = runs / "buckbi-before"
    if not before.exists():
        subprocess.run(["git", "worktree", "add", "-f", str(before), "94aa24f"], check=True, capture_output=True,
                       cwd=DOCS.parent)
    res = subprocess.run([sys.executable, str(DOCS.parent / "benchmarks" / "bench_startup.py"), "--before",
                          str(before.resolve()), "--markdown"], capture_output=True, text=True, check=True)
    return res.stdout.strip()


def speed_table(runs: Path, reuse: bool) -> str:
    """benchmarks/bench_pwl.py --markdown: one 2048-period episode per gym, ngspice beside the fast simulator."""
    return _bench("bench_pwl.py")


def sweep_table(runs: Path, reuse: bool) -> str:
    """benchmarks/bench_sweep.py --markdown: points per minute with 1 and 2 local Dask workers."""
    return _bench("bench_sweep.py")


def agreement_table(runs: Path, reuse: bool) -> str:
    """benchmarks/agreement_table.py: pwl and T/20 ngspice against T/400 ngspice, per gym and point."""
    return _bench("agreement_table.py")


def pop_table(runs: Path, reuse: bool) -> str:
    """benchmarks/bench_pop.py --markdown: POP + AC against the injection, one point; a margins sweep."""
    return _bench("bench_pop.py")


def recipes_table(runs: Path, reuse: bool) -> str:
    """benchmarks/bench_recipes.py: the ablation, each ingredient added in turn, seed 1 (~35 min)."""
    return _bench("bench_recipes.py", "--runs", str((runs / "recipes").resolve()), *(["--reuse"] if reuse else []))


def seeds_table(runs: Path, reuse: bool) -> str:
    """benchmarks/bench_recipes.py: the signoff recipe from scratch with four seeds (~20 min; seed 1 shared)."""
    return _bench("bench_recipes.py", "--rows", "signoff", "--seeds", "1,2,3,4", "--runs",
                  str((runs / "recipes").resolve()), *(["--reuse"] if reuse else []))


def _bench(script: str, *args: str) -> str:
    """A benchmark's markdown table (its --markdown output), run from benchmarks/ as a user would."""
    res = subprocess.run([sys.executable, str(DOCS.parent / "benchmarks" / script), "--markdown", *args],
                         capture_output=True, text=True, check=True, cwd=DOCS.parent / "benchmarks")
    return res.stdout.strip()


TABLES = {"shipped": (shipped_table, "training.md"), "ngspice": (ngspice_table, "training.md"), "plan": (plan_table, "findings.md"), "tolerances": (tolerance_table, "findings.md"),
          "deployment": (deployment_table, "findings.md"), "margins": (margins_table, "findings.md"),
          "evaluate": (evaluate_table, "results.md"), "startup": (startup_table, "measurements.md"),
          "speed": (speed_table, "measurements.md"), "sweep": (sweep_table, "measurements.md"),
          "agreement": (agreement_table, "measurements.md"), "pop": (pop_table, "measurements.md"),
          "recipes": (recipes_table, "training.md"), "seeds": (seeds_table, "training.md")}


def write_table(doc: Path, name: str, text: str) -> None:
    """Replace the table between its markers in ``doc``."""
    page = doc.read_text()
    pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(\n<!-- /table:{name} -->)", re.S)
    if not pattern.search(page):
        raise SystemExit(f"{doc}: no <!-- table:{name} --> ... <!-- /table:{name} --> markers")
    doc.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), page))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="*", default=list(TABLES), help=f"which ({', '.join(TABLES)}; default all)")
    ap.add_argument("--runs", default="reports/tables", help="folder for the runs (default reports/tables)")
    ap.add_argument("--reuse", action="store_true", help="take the results a previous run left in --runs")
    args = ap.parse_args()
    for name in args.tables:
        make, doc = TABLES[name]
        text = make(Path(args.runs), args.reuse)
        write_table(DOCS / doc, name, text)
        print(f"{doc}: table {name} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
