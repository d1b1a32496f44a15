"""A converter of your own on both engines: the fast simulator against converged ngspice (the SPICE check's step,
``check_step``: T/1600 at 200 kHz) on 600-period start-ups, per gym and point, the worst deviation over the sampled
rows; the points and networks are ``tests/test_converter_engines.py``'s, which holds them to
``buckbi.pwl.agreement.CONVERGED``.

Run: ``.venv/bin/python benchmarks/agreement_converter.py [--converter buck-48v]`` (about 4 min here). Vout in % of vin.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from buckbi.converters.buck.design import load_converter
from buckbi.converters.buck.scenarios import converter_settings
from buckbi.episodes.run import run_episode
from buckbi.nn.actors import resolve_actor
from buckbi.nn.checkpoint import seed_actor
from buckbi.pwl.agreement import check_step, deviation

GROUPS = [("vout_pct_of_vin", "Vout % of vin"), ("plant_inputs", "Vo/error/vin/vref inputs"),
          ("duty_inputs", "duties and label"), ("nn_out", "NNout1")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--converter", default="buck-48v", help="a converter file or shipped name (default buck-48v)")
    args = ap.parse_args()
    conv = load_converter(args.converter)
    points = {"centre": conv.params(**conv.centre, steps=600)}
    r = conv.ranges  # discontinuous conduction: highest vin, lowest vref, a light load
    points["light"] = conv.params(vin=r["vin"][1], vref=r["vref"][0] * 1.2, ro=r["ro"][1] * 0.6, Lo=r["Lo"][0] * 2,
                                  steps=600)
    settings, step = converter_settings(conv, "startup"), check_step(conv.fsw)
    torch.manual_seed(7)
    actors = {"teacher": None, "gym1": seed_actor().double().eval(), "gym2": resolve_actor("pretrained").double(),
              "deploy": resolve_actor("pretrained").double()}
    print(f"{conv.name}: pwl vs ngspice at T/{1 / conv.fsw / step:.0f}")
    print("| gym | point | " + " | ".join(label for _, label in GROUPS) + " |\n|" + "---|" * (2 + len(GROUPS)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for gym, actor in actors.items():
            for name, p in points.items():
                fast = run_episode(gym, actor, p, tmp / "fast", "pwl", settings=settings)
                spice = run_episode(gym, actor, p, tmp / "spice", None, max_step=step, settings=settings)
                dev = deviation(fast, spice)
                print(f"| {gym} | {name} | " + " | ".join(f"{dev[k]:.2g}" if k in dev else "" for k, _ in GROUPS)
                      + " |", flush=True)


if __name__ == "__main__":
    main()
