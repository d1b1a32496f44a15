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

from buckbi.episodes.run import EpisodeParams, run_episode
from buckbi.nn.checkpoint import seed_actor
from buckbi.pwl.agreement import deviation

PERIODS = 300
T400 = 1 / 50e3 / 400
POINTS = {
    "light": EpisodeParams(vin=240.0, ro=80.0, Lo=95e-6, vref=60.0, steps=PERIODS),  # discontinuous conduction
    "heavy": EpisodeParams(vin=158.0, ro=5.5, Lo=22e-6, vref=141.0, steps=PERIODS),  # duty near 0.9
    "mid": EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=PERIODS),
}
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
