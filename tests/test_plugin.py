"""The pytest plugin itself, tested with pytester: markers, options, skip messages."""
from __future__ import annotations

pytest_plugins = ["pytester"]


def test_markers_are_registered(pytester):
    result = pytester.runpytest("--markers")
    for marker in ("ltspice", "slow", "nightly", "training"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{marker}: *"])


def test_simulator_fixture_skips_with_install_hint(pytester):
    pytester.makepyfile("def test_needs_spice(simulator):\n    assert False\n")
    result = pytester.runpytest("--buckbi-simulator", "ltspice", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*ltspice not found*Install LTspice*--simulator ngspice*"])


def test_slow_tests_skip_unless_asked(pytester):
    pytester.makepyfile("import pytest\n@pytest.mark.slow\ndef test_long():\n    pass\n")
    pytester.runpytest("-rs").assert_outcomes(skipped=1)
    pytester.runpytest("--buckbi-run-slow").assert_outcomes(passed=1)


def test_options_in_buckbi_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["buckbi SPICE-in-the-loop validation:", "*--buckbi-simulator*", "*--buckbi-update-golden*"])


def test_all_buckbi_options_are_in_the_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["buckbi SPICE-in-the-loop validation:", "*--buckbi-actor=PATH*", "*--buckbi-steps=N*",
                                 "*--buckbi-train-as-test*", "*--buckbi-episodes=N*", "*--buckbi-train-dir=DIR*", "*--buckbi-golden-dir=DIR*"])


def test_training_tests_skip_unless_train_as_test(pytester):
    pytester.makepyfile("import pytest\n@pytest.mark.training\ndef test_ep():\n    pass\n"
                        "def test_other():\n    pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*training-as-test: enable with --buckbi-train-as-test --buckbi-episodes N*"])
    result = pytester.runpytest("--buckbi-train-as-test")
    result.assert_outcomes(passed=1, deselected=1)  # a training session runs only the training tests


def test_training_episode_is_parametrized_by_episodes(pytester):
    pytester.makepyfile("import pytest\n@pytest.mark.training\ndef test_ep(training_episode):\n    pass\n")
    result = pytester.runpytest("--buckbi-train-as-test", "--buckbi-episodes", "4", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_ep?ep1? PASSED*", "*test_ep?ep4? PASSED*"])


def test_nightly_skips_with_message_and_goldens_come_from_golden_dir(pytester):
    for name in ("net_a", "net_b"):
        (pytester.path / "goldens" / name).mkdir(parents=True)
        (pytester.path / "goldens" / name / "actor.pth").write_bytes(b"")
    pytester.makepyfile("import pytest\n@pytest.mark.nightly\ndef test_g(golden_network):\n"
                        "    assert golden_network.path.name.startswith('net_')\n")
    result = pytester.runpytest("--buckbi-golden-dir", "goldens", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*nightly regression: enable with -m nightly*"])
    result = pytester.runpytest("--buckbi-golden-dir", "goldens", "-m", "nightly", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_g?net_a? PASSED*", "*test_g?net_b? PASSED*"])


def test_actor_fixture_loads_the_given_checkpoint(pytester):
    import torch
    from buckbi.nn.checkpoint import save_checkpoint, seed_actor
    torch.manual_seed(3)
    model = seed_actor()
    save_checkpoint(pytester.path / "mine.pth", model)
    first = float(model[0].weight[0, 0].detach())
    pytester.makepyfile(f"def test_a(actor):\n    assert abs(float(actor[0].weight[0, 0]) - {first!r}) < 1e-7\n"
                        "    assert actor[0].weight.dtype.is_floating_point and not actor.training\n")
    pytester.runpytest("--buckbi-actor", "mine.pth").assert_outcomes(passed=1)


def test_training_as_test_under_xdist_runs_every_episode_in_order_in_one_worker(tmp_path):
    """``./buckbi.sh test`` adds ``-n 2``: the training items stay one group, so every episode runs and is logged."""
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd
    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_training_as_test.py",
                          "--buckbi-train-as-test", "--buckbi-episodes", "4", "--buckbi-steps", "64",
                          "--buckbi-simulator", "pwl", "--buckbi-train-dir", str(tmp_path / "run"), "-n", "2", "-q"],
                         cwd=repo, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "4 passed" in res.stdout and "skipped" not in res.stdout, res.stdout[-2000:]
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert log["episode"].tolist() == [1, 2, 3, 4] and (log["status"] == "ok").all()
