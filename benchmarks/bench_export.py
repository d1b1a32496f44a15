"""Benchmark: export time and ngspice transient time of exported nets (medians; no assertions).

Run: .venv/bin/python benchmarks/bench_export.py [--repeat N]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from buckbi import export_model
from buckbi.sim import SimJob, run_netlist

STEPS, FSW = 2048, 50e3  # 2048 control periods of 20 us = 40.96 ms


def mlp(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers[-1] = nn.Sigmoid()
    return nn.Sequential(*layers)


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def transient_netlist(sub: str, n_in: int, rng: np.random.Generator) -> str:
    """19 PWL inputs, a new random value every control period, over 41 ms."""
    lines = ["* bench: exported net driven by PWL inputs", sub]
    period = 1 / FSW
    for i in range(n_in):
        vals = rng.uniform(-1, 1, STEPS + 1)
        pts = [f"0 {vals[0]:.6g}"]
        for k in range(1, STEPS + 1):
            t = k * period
            pts.append(f"{t - 50e-9:.9g} {vals[k - 1]:.6g} {t:.9g} {vals[k]:.6g}")
        lines.append(f"V{i} in{i} 0 PWL(" + " ".join(pts) + ")")
    lines.append("X1 " + " ".join(f"in{i}" for i in range(n_in)) + " out ActorSubckt")
    lines += [".save V(out)", ".options method=gear", f".tran 1u {(STEPS + 2) / FSW:.9g} 0 1u", ".end"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    for widths in [(19, 32, 16, 1), (256, 256, 256, 1)]:
        net = mlp(*widths)
        for structure in ("fast", "plain"):
            t = median_time(lambda: export_model(net, structure=structure), args.repeat)
            print(f"export {'-'.join(map(str, widths))} {structure}: median {t * 1e3:.1f} ms")
    net = mlp(19, 32, 16, 1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for structure in ("fast", "plain"):
            text = transient_netlist(export_model(net, structure=structure), 19, rng)
            t = median_time(lambda: run_netlist(SimJob(text, traces=["V(out)"]), tmp), args.repeat)
            print(f"ngspice .tran 41 ms, 19-32-16-1 {structure}: median {t:.2f} s")


if __name__ == "__main__":
    main()
