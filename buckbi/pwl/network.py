"""The compiled actor (numba): a feed-forward network of Linear layers, each with at most one activation."""
from __future__ import annotations

import numpy as np
from .jit import kernel as njit_kernel

from ..nn.activations import ACTIVATIONS

# Activations of the compiled MLP: the ids of buckbi.nn.activations (0: none). numba takes them as constants.
ACT_NONE = 0
ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SILU, ACT_HARDTANH, ACT_HARDSIGMOID, ACT_LEAKY, ACT_ELU, ACT_SOFTPLUS = (
    ACTIVATIONS[k].id for k in ("relu", "sigmoid", "tanh", "silu", "hardtanh", "hardsigmoid", "leaky_relu", "elu",
                                "softplus"))


@njit_kernel
def _activate(v, act, p0, p1):
    if act == ACT_RELU:
        return v if v > 0.0 else 0.0
    if act == ACT_SIGMOID:
        return 1.0 / (1.0 + np.exp(-v)) if v >= 0.0 else np.exp(v) / (1.0 + np.exp(v))
    if act == ACT_TANH:
        return np.tanh(v)
    if act == ACT_LEAKY:
        return v if v > 0.0 else p0 * v
    if act == ACT_HARDTANH:
        return min(max(v, p0), p1)
    if act == ACT_HARDSIGMOID:
        return min(max(v / 6.0 + 0.5, 0.0), 1.0)
    if act == ACT_SILU:
        return v / (1.0 + np.exp(-v)) if v >= 0.0 else v * np.exp(v) / (1.0 + np.exp(v))
    if act == ACT_ELU:
        return v if v > 0.0 else p0 * (np.exp(v) - 1.0)
    if act == ACT_SOFTPLUS:  # p0 beta, p1 threshold
        return v if p0 * v > p1 else np.log1p(np.exp(p0 * v)) / p0
    return v


@njit_kernel
def mlp(x, weights, biases, shapes, acts, act_p):
    """The compiled actor: layers of (W, b) then an activation each (ACT_NONE for none)."""
    return mlp_into(x, weights, biases, shapes, acts, act_p, np.empty((2, max(shapes[:, 0].max(), x.shape[0]))))


@njit_kernel
def mlp_into(x, weights, biases, shapes, acts, act_p, buf):
    """``mlp`` with its layers' values in ``buf`` (2 x the widest layer): no allocation per call."""
    w_off = 0
    b_off = 0
    src = -1  # -1: read x; else the row of buf holding the layer's input
    for layer in range(shapes.shape[0]):
        n_out, n_in = shapes[layer, 0], shapes[layer, 1]
        dst = 0 if src != 0 else 1
        for i in range(n_out):
            acc = biases[b_off + i]
            for j in range(n_in):
                acc += weights[w_off + i * n_in + j] * (x[j] if src < 0 else buf[src, j])
            buf[dst, i] = _activate(acc, acts[layer], act_p[layer, 0], act_p[layer, 1])
        w_off += n_out * n_in
        b_off += n_out
        src = dst
    return buf[src, 0]


@njit_kernel
def mlp_rows(xs, weights, biases, shapes, acts, act_p):
    """The compiled actor on each row of ``xs``."""
    out = np.empty(xs.shape[0])
    for k in range(xs.shape[0]):
        out[k] = mlp(xs[k], weights, biases, shapes, acts, act_p)
    return out
