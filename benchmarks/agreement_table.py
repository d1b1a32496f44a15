"""The fast simulator against converged ngspice (T/400), and default-step ngspice (T/20) against the same: the worst
deviation over the sampled rows of 300-period episodes, per gym and point, seeded (untrained) actor.

Run: ``.venv/bin/python benchmarks/agreement_table.py [--markdown]`` (about 3 min here); the points and the actor are
``tests/test_pwl_agreement.py``'s, which checks them against ``buckbi.pwl.agreement.CONVERGED``. Vout in % of vin.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from buckbi.episodes.run import run_episode
from buckbi.nn.checkpoint import seed_actor
from buckbi.pwl.agreement import reference_points, deviation

T400 = 1 / 50e3 / 400
POINTS = reference_points()
# an untrained actor in the loop at heavy load: T/400 ngspice is not converged there (tests/test_pwl_agreement.py)
CASES = [("teacher", p) for p in POINTS] + [("gym1", p) for p in POINTS] + [("gym2", "light"), ("gym2", "mid"),
                                                                            ("deploy", "light"), ("deploy", "mid")]
GROUPS = [("vout_pct_of_vin", "Vout % of vin"), ("plant_inputs", "Vo/error/vin/vref inputs"),
          ("duty_inputs", "duties and label"), ("nn_out", "NNout1"), ("accumulator", "NNin19")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true")
    ap.parse_args()
    torch.manual_seed(7)
    actor = seed_actor().double().eval()
    print("| gym | point | " + " | ".join(label for _, label in GROUPS) + " |\n|" + "---|" * (2 + len(GROUPS)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for gym, point in CASES:
            a = None if gym == "teacher" else actor
            p = POINTS[point]
            fast = run_episode(gym, a, p, tmp / "fast", "pwl")
            fine = run_episode(gym, a, p, tmp / "fine", "ngspice", max_step=T400)
            coarse = run_episode(gym, a, p, tmp / "coarse", "ngspice")
            d1, d2 = deviation(fast, fine), deviation(coarse, fine)
            cells = [f"{d1[g]:.1e} / {d2[g]:.1e}" if g in d1 else "-" for g, _ in GROUPS]
            print(f"| {gym} | {point} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
