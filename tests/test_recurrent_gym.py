"""Recurrent cells as the reference runs them: ports inputs, CLK, outputs, and in a gym (inputs held on ctrlclk)
the output after edge t is f(x[t], h[t-1]): PyTorch stepped once per row, within 1e-6 at every row."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from buckbi.converters.buck import EpisodeParams
from buckbi.engines.spice import param_file_text
from buckbi.episodes.run import run_episode
from buckbi.export import export_model
from buckbi.export.reference import step_reference

TOL = 1e-6
CELLS = {"gru": lambda: nn.GRUCell(4, 1), "rnn": lambda: nn.RNNCell(4, 1), "lstm": lambda: nn.LSTMCell(4, 1)}


def test_ports_follow_the_reference_exporter_and_the_gym_passes_ctrlclk():
    model = nn.Sequential(nn.Linear(19, 4), nn.GRUCell(4, 1))
    text = export_model(model)
    assert ".subckt ActorSubckt " + " ".join(f"NNIN{i}" for i in range(1, 20)) + " CLK NNOUT1" in text
    p = EpisodeParams(vin=200, ro=20, Lo=50e-6, vref=100)
    assert "NNin19 ctrlclk NNout1 ActorSubckt" in param_file_text(p, "a.sp", "gym1", clocked=True)
    assert "NNin19 NNout1 ActorSubckt" in param_file_text(p, "a.sp", "gym1")


@pytest.mark.ltspice
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_a_recurrent_actor_in_the_gym_steps_like_pytorch_once_per_edge(simulator, tmp_path, cell):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(19, 4), nn.Tanh(), CELLS[cell]()).double().eval()
    ep = run_episode("gym1", model, EpisodeParams(vin=200, ro=20, Lo=50e-6, vref=100, steps=64), tmp_path,
                     simulator)
    ref = step_reference(model, ep.x).ravel()  # row t: x[t] with the state from rows 0..t-1, h[-1] = 0
    assert np.ptp(ref) > 1e-2  # the state moves
    err = np.abs(ep.pred - ref)
    assert err.max() <= TOL, f"worst |NNout1 - f(x[t], h[t-1])| = {err.max():.2e} at row {err.argmax()}"
    late = np.abs(ep.pred[1:] - step_reference(model, np.vstack([np.zeros(19), ep.x[:-1]])).ravel()[1:])
    assert late.max() > 100 * TOL  # and it is not the one-row-late f(x[t-1], h[t-1]) of before
