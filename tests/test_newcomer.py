"""A newcomer's first hour: networks loaded as the user has them (never with guessed activations), one verdict
convention with exit codes, one-line errors, outputs that never replace a link or a special file, a quick CLI."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from buckbi.cli import main
from buckbi.nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, seed_actor

REPO = Path(__file__).resolve().parents[1]


def tanh_net() -> nn.Sequential:
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(19, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1),
                         nn.Sigmoid()).eval()


def largest_difference(a: nn.Module, b: nn.Module) -> float:
    x = torch.rand(256, 19, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


# --- networks as the user has them ---------------------------------------------------------------------------------

def test_a_bare_state_dict_of_another_shape_is_refused_not_rebuilt_with_guessed_activations(tmp_path, capsys):
    torch.save(tanh_net().state_dict(), tmp_path / "my.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "my.pth")
    text = str(err.value)
    assert "19-64-64-1" in text and "--arch" in text and "\n" not in text and "\x1b" not in text
    assert main(["export", str(tmp_path / "my.pth"), "--out", str(tmp_path / "my.sp")]) == 2
    assert not (tmp_path / "my.sp").exists()
    assert "--arch" in capsys.readouterr().err


def test_an_architecture_string_rebuilds_the_state_dict_exactly_and_the_export_says_tanh(tmp_path, capsys):
    net = tanh_net()
    torch.save(net.state_dict(), tmp_path / "my.pth")
    model, meta = load_checkpoint(tmp_path / "my.pth", arch="19-64-64-1:tanh,tanh,sigmoid")
    assert largest_difference(model, net) == 0.0 and "tanh" in meta["source"]
    # the same weights under other names (a custom module's attributes) load by position
    class Mine(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = net[0], net[2], net[4]
    torch.save(Mine().state_dict(), tmp_path / "mine.pth")
    other, _ = load_checkpoint(tmp_path / "mine.pth", arch="19-64-64-1:tanh,tanh,sigmoid")
    assert largest_difference(other, net) == 0.0
    assert main(["export", str(tmp_path / "my.pth"), "--arch", "19-64-64-1:tanh,tanh,sigmoid",
                 "--out", str(tmp_path / "my.sp")]) == 0
    header = (tmp_path / "my.sp").read_text().splitlines()[:5]
    assert any("tanh" in line and "relu" not in line for line in header), header


@pytest.mark.parametrize("arch, why", [
    ("19-64-64-1:tanh,tanh", "3 Linear layers but 2 activations"),
    ("19-64-64-1:tanh,swish,sigmoid", "unknown activation 'swish'"),
    ("19-x-1:relu,sigmoid", "not integers"),
    ("19-32-1:relu,sigmoid", "do not fit --arch"),
])
def test_a_wrong_architecture_string_names_the_problem(tmp_path, arch, why):
    torch.save(tanh_net().state_dict(), tmp_path / "my.pth")
    with pytest.raises(CheckpointError, match=why):
        load_checkpoint(tmp_path / "my.pth", arch=arch)


def test_a_pickled_module_and_torchscript_load_only_with_the_trust_flag(tmp_path):
    net = tanh_net()
    torch.save(net, tmp_path / "full.pth")
    torch.jit.script(net).save(str(tmp_path / "scripted.pt"))
    torch.jit.trace(net, torch.zeros(1, 19)).save(str(tmp_path / "traced.pt"))
    for name in ("full.pth", "scripted.pt", "traced.pt"):
        with pytest.raises(CheckpointError, match="--trust-pickle") as err:
            load_checkpoint(tmp_path / name)
        assert "\x1b" not in str(err.value) and "\n" not in str(err.value)
        model, _ = load_checkpoint(tmp_path / name, trust_pickle=True)
        assert largest_difference(model, net) == 0.0, name
        assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Tanh", "Linear", "Sigmoid"]


def test_a_module_whose_forward_is_not_its_layers_in_order_is_refused(tmp_path):
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(19, 19), nn.Linear(19, 1)

        def forward(self, x):
            return self.b(self.a(x) + x)  # a residual: not a Sequential
    torch.jit.script(Skip()).save(str(tmp_path / "skip.pt"))
    with pytest.raises(CheckpointError, match="forward"):
        load_checkpoint(tmp_path / "skip.pt", trust_pickle=True)


def test_the_seeds_bare_state_dicts_keep_loading(tmp_path):
    torch.manual_seed(0)
    seed = seed_actor()
    torch.save(seed.state_dict(), tmp_path / "actor_final.pth")
    model, meta = load_checkpoint(tmp_path / "actor_final.pth")
    assert meta["source"] == "seed state_dict" and largest_difference(model, seed) == 0.0


def test_a_corrupt_checkpoint_says_how_to_go_on_from_an_earlier_one(tmp_path):
    save_checkpoint(tmp_path / "actor_ep7.pth", seed_actor())
    (tmp_path / "actor_final.pth").write_bytes(b"\x80\x02garbage")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "actor_final.pth")
    text = str(err.value)
    assert "actor_ep7.pth" in text and "--start-episode 7" in text and "\n" not in text


def test_train_init_starts_from_the_users_network_and_resumes_with_it(tmp_path):
    net = tanh_net()
    torch.save(net.state_dict(), tmp_path / "my.pth")
    args = ["train", "--simulator", "pwl", "--episodes", "1", "--steps", "64", "--epochs", "1",
            "--spice-check-every", "0", "--quiet", "--workdir", str(tmp_path / "gym"), "--seed", "1",
            "--init", str(tmp_path / "my.pth"), "--arch", "19-64-64-1:tanh,tanh,sigmoid"]
    assert main(args) == 0
    entered, _ = load_checkpoint(tmp_path / "gym" / "actor_ep1.pth")  # the actor as episode 1 found it
    assert largest_difference(entered, net) == 0.0
    final, _ = load_checkpoint(tmp_path / "gym" / "actor_final.pth")
    assert [type(m).__name__ for m in final] == [type(m).__name__ for m in net]
    assert main(args) == 0  # the same --init again resumes the run it started
    torch.save(seed_actor().state_dict(), tmp_path / "other.pth")
    assert main(args[:-4] + ["--init", str(tmp_path / "other.pth")]) == 2  # another network: not over this run


# --- one verdict convention ----------------------------------------------------------------------------------------

def flat_network(path: Path) -> None:
    """A network that ignores its inputs: duty 0.2 whatever Vout does (it cannot regulate)."""
    net = seed_actor()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[4].bias.fill_(-1.386)  # sigmoid(-1.386) = 0.2
    save_checkpoint(path, net)


@pytest.mark.parametrize("command", [
    ["evaluate", "--points", "2", "--steps", "256"],
    ["sweep", "--grid", "vin=200,vref=80:120:2", "--steps", "256", "--jobs", "1", "--quiet"],
])
def test_a_network_that_does_not_regulate_gets_a_fail_verdict_exit_1_and_its_reason_on_the_page(tmp_path, command,
                                                                                                capsys):
    flat_network(tmp_path / "flat.pth")
    code = main(command + ["--actor", str(tmp_path / "flat.pth"), "--simulator", "pwl", "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert code == 1 and "verdict: FAIL" in out.out, out
    page = next((tmp_path / "o").glob("*.html")).read_text()
    assert 'id="buckbi-verdict"' in page and "FAIL: " in page and "sse_%" in page and 'id="buckbi-limits"' in page


def test_the_teacher_like_evaluation_passes_with_exit_0(tmp_path, capsys):
    code = main(["evaluate", "--actor", "seed-pretrained", "--points", "1", "--steps", "1024", "--simulator", "pwl",
                 "--max-sse", "50", "--max-overshoot", "100", "--out", str(tmp_path / "o")])
    assert code == 0 and "verdict: PASS" in capsys.readouterr().out
    assert "PASS: " in (tmp_path / "o" / "evaluate_plot.html").read_text()


def test_fra_fails_a_network_below_the_phase_margin_limit_with_exit_1(tmp_path, capsys):
    code = main(["fra", "--actor", "seed-pretrained", "--simulator", "pwl", "--fstart", "300", "--fend", "6000",
                 "--per-octave", "2", "--out", str(tmp_path / "f")])
    out = capsys.readouterr()
    assert code == 1 and "verdict: FAIL" in out.out and "phase_margin_deg" in out.err, out
    page = (tmp_path / "f" / "fra.html").read_text()
    assert "FAIL: " in page and "phase margin &gt;= 45 deg" in page
    assert main(["fra", "--actor", "seed-pretrained", "--simulator", "pwl", "--fstart", "300", "--fend", "6000",
                 "--per-octave", "2", "--min-phase-margin", "1", "--min-gain-margin", "0",
                 "--out", str(tmp_path / "g")]) == 0


# --- errors, not tracebacks; no path clobbered ---------------------------------------------------------------------

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buckbi", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_an_output_symlink_is_written_through_to_its_target(tmp_path):
    target = tmp_path / "real.sp"
    target.write_text("old")
    (tmp_path / "link.sp").symlink_to(target)
    res = cli("export", "pretrained_not_a_file", "--out", "link.sp", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1  # a missing checkpoint: one line
    save_checkpoint(tmp_path / "a.pth", seed_actor())
    res = cli("export", "a.pth", "--out", "link.sp", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "link.sp").is_symlink() and ".subckt ActorSubckt" in target.read_text()


def test_a_fifo_is_refused_never_replaced(tmp_path):
    save_checkpoint(tmp_path / "a.pth", seed_actor())
    os.mkfifo(tmp_path / "pipe")
    res = cli("export", "a.pth", "--out", "pipe", cwd=tmp_path)
    assert res.returncode == 2 and "FIFO" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)


def test_an_output_below_a_regular_file_is_one_line(tmp_path):
    save_checkpoint(tmp_path / "a.pth", seed_actor())
    (tmp_path / "file").write_text("x")
    res = cli("export", "a.pth", "--out", "file/net.sp", cwd=tmp_path)
    assert res.returncode == 2 and "is a file, not a folder" in res.stderr and res.stderr.count("\n") == 1
    res = cli("evaluate", "--actor", "seed-pretrained", "--simulator", "pwl", "--points", "1", "--steps", "64",
              "--out", "file/ev", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk is full"), (errno.EACCES, "choose a writable")])
def test_a_full_disk_or_an_unwritable_folder_is_one_line_and_the_saved_file_is_kept(tmp_path, monkeypatch, capsys,
                                                                                   code, words):
    save_checkpoint(tmp_path / "a.pth", seed_actor())
    (tmp_path / "net.sp").write_text("the earlier export")
    import buckbi.export as export

    def failing_write(*a, **k):
        raise OSError(code, os.strerror(code), str(tmp_path / "net.sp"))
    monkeypatch.setattr(export, "atomic_write_text", failing_write)
    assert main(["export", str(tmp_path / "a.pth"), "--out", str(tmp_path / "net.sp")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "net.sp").read_text() == "the earlier export"


def test_a_missing_ngspice_names_the_fast_simulator(tmp_path):
    env = dict(os.environ, PATH="/nonexistent", BUCKBI_SIMULATOR="ngspice")
    res = subprocess.run([sys.executable, "-m", "buckbi", "evaluate", "--actor", "seed-pretrained", "--simulator",
                          "ngspice", "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 2 and "--simulator pwl" in res.stderr and "Traceback" not in res.stderr, res.stderr


# --- a quick start --------------------------------------------------------------------------------------------------

def test_the_help_loads_no_pytorch_pandas_or_spice_reader():
    code = ("import sys; from buckbi.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'pandas', 'spicelib', 'scipy', 'numba', 'plotly') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr
