"""PyTorch reference for what the exported circuit computes, recurrent state included."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .graph import _walk


@torch.no_grad()
def step_reference(model: nn.Module, xs: np.ndarray) -> np.ndarray:
    """Run ``xs`` (steps x inputs) through ``model`` in float64, one row per clock step.

    Feed-forward layers see each row independently. A recurrent cell keeps its hidden state from
    one row to the next, starting at zero, exactly as the exported subcircuit holds it between
    rising CLK edges; an LSTMCell passes its ``h`` on.
    """
    net = copy.deepcopy(model).double().eval()
    leaves = [m for _, m in _walk(net, "")]
    state: dict[int, object] = {}
    rows = []
    for x in np.atleast_2d(np.asarray(xs, dtype=np.float64)):
        v = torch.from_numpy(x.copy()).unsqueeze(0)
        for i, m in enumerate(leaves):
            if isinstance(m, (nn.RNNCell, nn.GRUCell)):
                state[i] = v = m(v, state.get(i))
            elif isinstance(m, nn.LSTMCell):
                state[i] = m(v, state.get(i))
                v = state[i][0]
            else:
                v = m(v)
        rows.append(v.squeeze(0).numpy().copy())
    return np.vstack(rows)
