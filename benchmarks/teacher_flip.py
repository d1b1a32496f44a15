"""Where the analog teacher's own loop is unstable under the tolerance table's parts: its critical pole (POP) against the
capacitor's ESR at a few points, and the share of a recipe's episodes whose teacher is unstable at a point they visit.

    python benchmarks/teacher_flip.py [--seed 4] [--episodes 400] [--recipe signoff] [--set NAME=VALUE ...]

The table's ESR is x0.5..2 of nominal (log-uniform); above ~1.4-1.8 x the Type III's gain at the switching ripple
makes the period map's eigenvalue pass -1 (a flip): the teacher driving gym 1 then settles into a period-2 oscillation
(tests/test_recipes.py checks it in both engines). Prints markdown.
"""
from __future__ import annotations

import argparse
import sys
import time

FACTORS = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0)
POINTS = ((200.0, 100.0, 10.0), (250.0, 60.0, 10.0), (150.0, 140.0, 10.0), (250.0, 140.0, 10.0), (250.0, 100.0, 5.0),
          (200.0, 100.0, 100.0))


def pole_table() -> str:
    import numpy as np

    from buckbi.converters.buck.spec import EpisodeParams
    from buckbi.loopgain.pop import Loop, PopError, critical_pole, find_orbit
    nominal = EpisodeParams(vin=200.0, vref=100.0, ro=10.0, Lo=50e-6).ESR
    lines = ["| vin (V) | vref (V) | ro (Ohm) | " + " | ".join(f"ESR x{f:g}" for f in FACTORS) + " |",
             "|---|---|---|" + "---|" * len(FACTORS)]
    for vin, vref, ro in POINTS:
        cells = []
        for f in FACTORS:
            p = EpisodeParams(vin=vin, vref=vref, ro=ro, Lo=50e-6, ESR=nominal * f)
            try:
                loop = Loop("teacher", None, p)
                orbit = find_orbit(loop)
                rho = critical_pole(loop, orbit)
                ev = np.linalg.eigvals(orbit.jacobian)
                flip = rho >= 1.0 and abs(ev[np.argmax(np.abs(ev))].imag) < 1e-9 and ev[np.argmax(np.abs(ev))].real < 0
                cells.append(f"{rho:.3f}" + (" (flip)" if flip else ""))
            except PopError:
                cells.append("no orbit")
        lines.append(f"| {vin:g} | {vref:g} | {ro:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def episode_share(recipe_name: str, sets: list[str], seed: int, episodes: int) -> str:
    from buckbi.train.recipes import teacher_unstable, with_settings
    recipe = with_settings(recipe_name, sets)
    t0 = time.perf_counter()
    bad = [ep for ep in range(1, episodes + 1)
           if teacher_unstable(*(lambda pl: (pl.params, pl.scenario, pl.settings))(recipe.plan(seed, ep)))]
    return (f"{recipe.name}, seed {seed}: {len(bad)} of {episodes} episodes ({len(bad) / episodes:.1%}) visit a point "
            f"where the teacher's loop is unstable ({time.perf_counter() - t0:.1f} s for the check)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--recipe", default="signoff")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    print("The teacher's critical pole (largest |eigenvalue| of its period map, POP; >= 1: unstable), Lo 50 uH, "
          "L1 and C1 nominal:\n")
    print(pole_table())
    print()
    print(episode_share(args.recipe, args.set, args.seed, args.episodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
