"""Checkpoints carry the architecture; the export CLI takes seed and buckbi checkpoints."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from buckbi import export_model, step_reference
from buckbi.cli import main
from buckbi.nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, seed_actor


class SeedActor(nn.Module):
    """The seed notebook's Actor wrapper, so its state_dict keys are model.0.weight ..."""

    def __init__(self):
        super().__init__()
        self.model = seed_actor()


def test_buckbi_checkpoint_round_trips_any_supported_net(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.LeakyReLU(0.2),
                        nn.Sequential(nn.Dropout(0.1), nn.Linear(5, 3)), nn.GRUCell(3, 2)).eval()
    net[1].running_mean.uniform_(-1, 1)
    save_checkpoint(tmp_path / "a.pth", net, episode=7)
    back, meta = load_checkpoint(tmp_path / "a.pth")
    assert meta == {"episode": 7}
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_array_equal(step_reference(back, x), step_reference(net, x))
    assert export_model(back.eval()) == export_model(net)


def test_seed_state_dict_loads_as_seed_actor(tmp_path):
    actor = SeedActor()
    torch.save(actor.state_dict(), tmp_path / "actor_final.pth")
    net, meta = load_checkpoint(tmp_path / "actor_final.pth")
    assert meta["source"] == "seed state_dict"
    assert export_model(net) == export_model(actor.model)


def test_corrupt_checkpoint_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "actor_final.pth"
    bad.write_bytes(b"\x00not a torch file")
    with pytest.raises(CheckpointError, match="corrupt.*actor_epN.pth"):
        load_checkpoint(bad)
    assert bad.read_bytes() == b"\x00not a torch file"  # nothing is overwritten


def test_foreign_state_dict_is_refused(tmp_path):
    torch.save(nn.Sequential(nn.Linear(2, 2)).state_dict(), tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="not the seed Actor"):
        load_checkpoint(tmp_path / "x.pth")


def test_cli_export_seed_checkpoint(tmp_path, capsys):
    torch.save(SeedActor().state_dict(), tmp_path / "actor.pth")
    out = tmp_path / "nn.sp"
    assert main(["export", str(tmp_path / "actor.pth"), "--out", str(out), "--dialect", "ltspice",
                 "--subckt", "Net"]) == 0
    text = out.read_text()
    assert ".subckt Net " in text and "ltspice dialect" in text
    assert "wrote" in capsys.readouterr().out


def test_cli_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "buckbi", "export", str(tmp_path / "missing.pth"),
                           "--out", str(tmp_path / "x.sp")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
