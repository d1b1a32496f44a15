"""Every N-th checkpoint of a training run judged by the default plan (fast engine), beside the model selection's score
of it: how many lines the run's networks pass along the way, and whether the selection picks the best of them.

    python benchmarks/bench_checkpoints.py RUN [--from 800] [--every 80] [--out reports/checkpoints]

RUN is a ``buckbi train`` work folder with its ``actor_ep*.pth`` and ``selection.csv``. The row of episode N judges the
network leaving N's batch (``actor_ep{N+1}.pth``), the one the selection scores at N. About 1.5 min per checkpoint.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recipes import buckbi  # noqa: E402  (the same subprocess runner)


def judged(actor: Path, out: Path) -> dict:
    """Plan lines passed, least phase margin and worst reference-step overshoot of one checkpoint."""
    from buckbi.testplan.report import cell_verdicts
    if not (out / "results.csv").exists():
        buckbi("testplan", "default", "--actor", str(actor), "--simulator", "pwl", "--quiet", "--out", str(out))
    r = pd.read_csv(out / "results.csv")
    text = [c for c in r.columns if r[c].dtype == object or c in ("draw", "limit", "error", "verdict")]
    r[text] = r[text].astype(object).fillna("").astype(str)
    r["value"] = pd.to_numeric(r["value"], errors="coerce")
    v = cell_verdicts(r)
    lines = v[v["controller"] == "nn"]
    nn = r[r["controller"] == "nn"]
    pm = nn[(nn["test"] == "loopgain") & (nn["figure"] == "phase_margin_deg")]["value"]
    over = nn[(nn["test"] == "refstep") & (nn["figure"] == "overshoot_pct")]["value"]
    return {"lines": int((lines["verdict"] == "pass").sum()), "of": len(lines),
            "least PM (deg)": round(float(pm.min()), 1), "unmeasured PM": int(pm.isna().sum()),
            "worst ref-step overshoot (%)": round(float(over.max()), 1)}


def main() -> int:
    from buckbi.train.selection import leaving_checkpoint  # the network the selection scores at an episode
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a buckbi train work folder")
    ap.add_argument("--from", dest="start", type=int, default=800, help="first episode (default 800)")
    ap.add_argument("--every", type=int, default=80, help="episodes between checkpoints (default 80)")
    ap.add_argument("--out", default="reports/checkpoints", help="folder for the plans' results")
    args = ap.parse_args()
    run = Path(args.run)
    sel = (pd.read_csv(run / "selection.csv").rename(columns={"score_pct": "score"}).set_index("episode")  # (its old name)
           if (run / "selection.csv").exists() else None)
    rows = []
    for ep in range(args.start, 10**6, args.every):
        actor = leaving_checkpoint(run, ep)
        if actor is None:
            break
        row = {"episode": ep, **judged(actor, Path(args.out) / run.name / f"leaving{ep}")}
        if sel is not None and ep in sel.index:
            row |= {"selection score": round(float(sel.loc[ep, "score"]), 3), "kept": bool(sel.loc[ep, "kept"])}
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, header=len(rows) == 1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
