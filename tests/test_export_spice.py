"""The exported subcircuit computes what PyTorch computes, checked in real ngspice."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from buckbi import step_reference
from buckbi.export.verify import spice_forward, spice_step

from .strategies import inputs, networks

pytestmark = pytest.mark.ltspice

ABS_TOL = 1e-9  # the bound: |spice - torch| <= ABS_TOL + REL_TOL * |torch|
REL_TOL = 1e-7
STATE_TOL = 1e-7  # recurrent: the holds droop about 1e-8 per millisecond-long step in ngspice


def assert_close(spice: np.ndarray, ref: np.ndarray, rel: float = REL_TOL, abs_: float = ABS_TOL) -> None:
    err = np.abs(spice - ref)
    bound = abs_ + rel * np.abs(ref)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), f"spice {spice[worst]!r} vs torch {ref[worst]!r} at {worst}: error {err[worst]:.3g}"


@pytest.mark.parametrize("dialect", ["ngspice", "ltspice"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net=networks(), seed=st.integers(0, 2**32 - 1))
def test_random_networks_match_torch(simulator, dialect, net, seed):
    model, width = net
    x = inputs(np.random.default_rng(seed), 16, width)
    ref = step_reference(model, x)
    spice = spice_forward(model, x, dialect=dialect)
    assert spice.shape == ref.shape
    assert_close(spice, ref)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(net=networks(), seed=st.integers(0, 2**32 - 1))
def test_random_networks_match_torch_as_the_xspice_element(codemodel, net, seed):
    model, width = net
    x = inputs(np.random.default_rng(seed), 16, width)
    ref = step_reference(model, x)
    spice = spice_forward(model, x, structure="xspice", codemodel=codemodel)
    assert spice.shape == ref.shape
    assert_close(spice, ref)


def test_identity_network_as_the_xspice_element(codemodel):
    x = np.array([[0.25, -3.0], [1e-9, 7.5]])
    assert_close(spice_forward(nn.Sequential(nn.Identity()), x, structure="xspice", codemodel=codemodel), x)


@pytest.mark.parametrize("structure", ["fast", "plain"])
@pytest.mark.parametrize("dialect", ["ngspice", "ltspice"])
def test_seed_actor_every_structure_and_dialect(simulator, dialect, structure):
    torch.manual_seed(3)
    actor = nn.Sequential(nn.Linear(19, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    x = np.random.default_rng(4).uniform(-1, 1, size=(64, 19))
    assert_close(spice_forward(actor, x, dialect=dialect, structure=structure), step_reference(actor, x))


def test_weights_below_reference_exporter_resolution_survive(simulator):
    """6 decimals (the reference exporter) would turn these weights into 0; we keep every bit."""
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3e-7, -1.234567e-8]]))
        lin.bias.fill_(2.5e-9)
    x = np.array([[1.0, 1.0], [1e3, -1e3]])
    ref = step_reference(nn.Sequential(lin), x)
    assert np.all(np.abs(ref) > 1e-7)
    assert_close(spice_forward(nn.Sequential(lin), x), ref, rel=1e-12, abs_=0.0)


def test_saturating_activations_stay_finite_and_exact(simulator):
    """Inputs of +-1e4 into sigmoid/softplus/ELU/SiLU: no exp overflow in the B-sources."""
    model = nn.Sequential(nn.Linear(1, 6, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.ones(6, 1))
    for act in (nn.Sigmoid(), nn.Softplus(), nn.ELU(), nn.SiLU(), nn.Softplus(beta=0.5, threshold=3.0)):
        net = nn.Sequential(model[0], act)
        x = np.array([[-1e4], [-40.0], [-1.0], [0.0], [1.0], [40.0], [1e4]])
        assert_close(spice_forward(net, x), step_reference(net, x))


CELLS = {
    "rnn_tanh": lambda: nn.Sequential(nn.RNNCell(3, 4)),
    "rnn_relu": lambda: nn.Sequential(nn.Linear(3, 3), nn.RNNCell(3, 3, nonlinearity="relu"), nn.Linear(3, 1)),
    "gru": lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.GRUCell(4, 3), nn.Linear(3, 2)),
    "lstm": lambda: nn.Sequential(nn.LSTMCell(3, 3), nn.Sigmoid()),
    "lstm_nobias": lambda: nn.Sequential(nn.LSTMCell(3, 2, bias=False)),
}


@pytest.mark.parametrize("dialect", ["ngspice", "ltspice"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_recurrent_cells_step_like_torch(simulator, cell, dialect):
    torch.manual_seed(11)
    model = CELLS[cell]().eval()
    x = np.random.default_rng(5).normal(size=(10, 3))
    ref = step_reference(model, x)
    spice = spice_step(model, x, dialect=dialect)
    # the state really evolves: steps differ, so a stuck hold could not pass
    assert np.ptp(ref, axis=0).max() > 1e-2
    assert_close(spice, ref, rel=0.0, abs_=STATE_TOL)
