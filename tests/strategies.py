"""Hypothesis strategies shared by the test modules: random exportable networks and inputs."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

ACTIVATIONS = [
    lambda: nn.ReLU(), lambda: nn.Sigmoid(), lambda: nn.Tanh(), lambda: nn.LeakyReLU(0.07),
    lambda: nn.ReLU6(), lambda: nn.Hardtanh(-0.5, 2.0), lambda: nn.Hardsigmoid(), lambda: nn.Softplus(),
    lambda: nn.Softplus(beta=2.0, threshold=5.0), lambda: nn.ELU(alpha=0.7), lambda: nn.SiLU(), lambda: nn.Identity(),
]
SCALES = [1e-8, 1e-3, 1.0, 1e3]


def _fill(rng: np.random.Generator, shape, scale: float) -> torch.Tensor:
    w = rng.normal(size=shape) * scale
    tiny = rng.random(shape) < 0.1  # sprinkle magnitudes far below the 6-decimal reference exporter
    w[tiny] = rng.normal(size=int(tiny.sum())) * 1e-8
    return torch.from_numpy(w.astype(np.float32))


@st.composite
def networks(draw) -> tuple[nn.Sequential, int]:
    """A random eval-mode feed-forward net (1-4 Linear, widths 1-40) and its input width."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 40), min_size=n_layers + 1, max_size=n_layers + 1))
    layers: list[nn.Module] = []
    for i in range(n_layers):
        if draw(st.booleans()) and draw(st.booleans()):  # BatchNorm before a Linear, about 1 in 4
            layers.append(_batchnorm(widths[i], rng))
        lin = nn.Linear(widths[i], widths[i + 1], bias=draw(st.booleans()) or i == 0)
        scale = draw(st.sampled_from(SCALES))
        with torch.no_grad():
            lin.weight.copy_(_fill(rng, lin.weight.shape, scale))
            if lin.bias is not None:
                lin.bias.copy_(_fill(rng, lin.bias.shape, draw(st.sampled_from(SCALES))))
        layers.append(lin)
        if draw(st.booleans()):
            layers.append(nn.Dropout(0.3))
        if draw(st.integers(0, 3)) > 0:
            layers.append(draw(st.sampled_from(ACTIVATIONS))())
        if draw(st.integers(0, 5)) == 0:
            layers.append(_batchnorm(widths[i + 1], rng))
    net = nn.Sequential(*layers)
    if draw(st.booleans()):
        net = nn.Sequential(nn.Flatten(), nn.Sequential(*layers))  # nested
    return net.eval(), widths[0]


def _batchnorm(width: int, rng: np.random.Generator) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(width)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(rng.normal(size=width).astype(np.float32)))
        bn.running_var.copy_(torch.from_numpy(rng.uniform(0.1, 3.0, size=width).astype(np.float32)))
        bn.weight.copy_(torch.from_numpy(rng.normal(size=width).astype(np.float32)))
        bn.bias.copy_(torch.from_numpy(rng.normal(size=width).astype(np.float32)))
    return bn


def inputs(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    scale = rng.choice([1e-3, 1.0, 100.0], size=(n, 1))
    return rng.normal(size=(n, width)) * scale
