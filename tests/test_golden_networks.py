"""Nightly regression of golden exported networks: ``pytest -m nightly [--buckbi-golden-dir DIR] [--buckbi-update-golden]``."""
from __future__ import annotations

import shutil

import pytest
import torch

from buckbi.nn.checkpoint import save_checkpoint, seed_actor
from buckbi.pytestplugin.golden import GoldenMismatch, GoldenNetwork


@pytest.mark.nightly
@pytest.mark.parametrize("dialect", ["ngspice", "ltspice"])
def test_golden_netlist_unchanged(golden_network, dialect, update_golden):
    golden_network.check_netlist(dialect, update_golden)


@pytest.mark.nightly
@pytest.mark.ltspice
def test_golden_outputs_on_fixed_inputs(golden_network, simulator, update_golden):
    golden_network.check_fixed_inputs(simulator, update_golden)


@pytest.mark.nightly
@pytest.mark.ltspice
def test_golden_short_episode(golden_network, simulator, update_golden, tmp_path):
    golden_network.check_episode(simulator, tmp_path, update_golden)


# The machinery itself, in the default run: record, then catch a drift with a readable message.

@pytest.fixture
def recorded(tmp_path, simulator):
    torch.manual_seed(1)
    net = GoldenNetwork(tmp_path / "net")
    save_checkpoint(net.path / "actor.pth", seed_actor())
    net.check_netlist("ngspice", update=True)
    net.check_fixed_inputs(simulator, update=True)
    return net


@pytest.mark.ltspice
def test_golden_check_passes_on_what_it_recorded(recorded, simulator):
    recorded.check_netlist("ngspice", update=False)
    recorded.check_fixed_inputs(simulator, update=False)


@pytest.mark.ltspice
def test_golden_check_reports_a_drifted_network(recorded, simulator):
    model = recorded.model()
    with torch.no_grad():
        model[4].bias += 1e-3  # a small drift of the output bias
    save_checkpoint(recorded.path / "actor.pth", model)
    with pytest.raises(GoldenMismatch, match=r"(?sm)netlist changed.*^-.*^\+"):
        recorded.check_netlist("ngspice", update=False)
    with pytest.raises(GoldenMismatch, match=r"(?s)outputs on fixed inputs drifted.*worst.*golden .* now"):
        recorded.check_fixed_inputs(simulator, update=False)


def test_missing_golden_file_says_how_to_record_it(tmp_path):
    net = GoldenNetwork(tmp_path / "mine")
    save_checkpoint(net.path / "actor.pth", seed_actor())
    with pytest.raises(GoldenMismatch, match="--buckbi-update-golden"):
        net.check_netlist("ltspice", update=False)
    shutil.rmtree(net.path)
