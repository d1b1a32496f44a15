"""The training loop's bookkeeping with a stand-in episode runner (no SPICE): artefacts, resume, failures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from buckbi.nn.checkpoint import CheckpointError, load_checkpoint
from buckbi.episodes.run import Episode, EpisodeParams
from buckbi.train import (SEED_COLUMNS, ScheduleError, TrainConfig, Trainer, TrainingStopped, bi_update,
                          gym_for_episode, parse_schedule, train)

W = np.linspace(-0.5, 0.5, 19)


class FakeRunner:
    """Returns episodes whose label is a smooth function of random inputs; records what it was asked."""

    def __init__(self, fail: set[int] | None = None):
        self.calls: list[tuple[str, list[EpisodeParams]]] = []
        self.fail = fail or set()
        self.count = 0

    def __call__(self, gym, actor, params, workdir, simulator=None, *, parallel=None, timeout=None):
        self.calls.append((gym, params))
        out = []
        for p in params:
            self.count += 1
            if self.count in self.fail:
                out.append(RuntimeError(f"simulated failure {self.count}"))
                continue
            rng = np.random.default_rng(int(p.vin * 1000))
            x = rng.uniform(0, 1, (p.steps + 1, 19))
            y = 1 / (1 + np.exp(-(x @ W)))
            with torch.no_grad():
                pred = actor(torch.tensor(x, dtype=torch.float32)).numpy().ravel()
            rows = pd.DataFrame({"time": np.arange(len(x)) / p.fsw, "V(nnin1)": x[:, 0], "V(nnin17)": x[:, 16],
                                 "V(nnpwm)": y, "V(nnout1)": pred})
            out.append(Episode(gym, p, x, y, pred, rows, 0.01))
        return out


def config(tmp_path, runner, **kw) -> TrainConfig:
    base = dict(workdir=tmp_path / "gym", steps=32, epochs=20, seed=5, progress=False, runner=runner)
    return TrainConfig(**(base | kw))


def test_schedule_parsing_and_lookup():
    stages = parse_schedule("gym1:300,gym2:200")
    assert stages == [("gym1", 300), ("gym2", 200)]
    assert [gym_for_episode(stages, e) for e in (1, 300, 301, 500, 501)] == ["gym1", "gym1", "gym2", "gym2", "gym2"]
    for bad in ("gym3:5", "gym1", "gym1:0", "gym1:x", ""):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)


def test_bi_update_fits_a_batch():
    torch.manual_seed(0)
    from buckbi.nn.checkpoint import seed_actor
    actor = seed_actor()
    opt = torch.optim.Adam(actor.parameters(), lr=1e-2)
    x = np.random.default_rng(0).uniform(0, 1, (256, 19))
    y = 1 / (1 + np.exp(-(x @ W)))
    first = bi_update(actor, opt, x, y, 1)
    last = bi_update(actor, opt, x, y, 300)
    assert last < first / 10


def test_artefacts_of_a_run(tmp_path):
    log = train(config(tmp_path, FakeRunner(), episodes=3))
    root = tmp_path / "gym"
    assert list(log["episode"]) == [1, 2, 3] and list(log.columns[:len(SEED_COLUMNS)]) == SEED_COLUMNS
    on_disk = pd.read_csv(root / "log.csv")
    assert list(on_disk["episode"]) == [1, 2, 3] and (on_disk["status"] == "ok").all()
    assert np.isfinite(on_disk["loss_actor"]).all() and (on_disk["epoch"] == 20).all()
    for ep in (1, 2, 3):
        assert (root / f"actor_ep{ep}.pth").exists() and (root / "episodes" / f"ep{ep}.csv.gz").exists()
    _, meta = load_checkpoint(root / "actor_final.pth")
    assert meta["episode"] == 3 and meta["seed"] == 5 and "optimizer" in meta
    for plot in ("loss_plot.html", "episode_plot.html"):
        html = (root / plot).read_text()
        assert 'src="plotly.min.js"' in html and "cdn.plot.ly" not in html  # offline
    assert (root / "plotly.min.js").stat().st_size > 1_000_000


def test_resume_continues_after_the_last_episode_with_the_same_draws(tmp_path):
    runner = FakeRunner()
    train(config(tmp_path, runner, episodes=2))
    log = train(config(tmp_path, runner, episodes=2))
    assert list(log["episode"]) == [1, 2, 3, 4]
    fresh = FakeRunner()
    train(config(tmp_path / "other", fresh, episodes=4))
    assert [p for _, ps in runner.calls for p in ps] == [p for _, ps in fresh.calls for p in ps]


def test_interrupted_commit_is_redone(tmp_path):
    train(config(tmp_path, FakeRunner(), episodes=2))
    root = tmp_path / "gym"
    log = pd.read_csv(root / "log.csv")
    extra = log.iloc[[-1]].assign(episode=3)  # a row written, then killed before the checkpoint
    pd.concat([log, extra]).to_csv(root / "log.csv", index=False)
    trainer = Trainer(config(tmp_path, FakeRunner(), episodes=1))
    assert trainer.next_episode == 3 and list(trainer.log["episode"]) == [1, 2]


def test_start_episode_drops_later_rows(tmp_path):
    train(config(tmp_path, FakeRunner(), episodes=4))
    log = train(config(tmp_path, FakeRunner(), episodes=1, start_episode=3))
    assert list(log["episode"]) == [1, 2, 3]


def test_fresh_moves_the_old_run_aside(tmp_path):
    train(config(tmp_path, FakeRunner(), episodes=2))
    log = train(config(tmp_path, FakeRunner(), episodes=1, fresh=True))
    assert list(log["episode"]) == [1]
    previous = [p for p in (tmp_path / "gym").iterdir() if p.name.startswith("previous-")]
    assert len(previous) == 1 and (previous[0] / "actor_ep2.pth").exists()


def test_failed_episode_is_logged_and_training_goes_on(tmp_path):
    log = train(config(tmp_path, FakeRunner(fail={2}), episodes=3))
    assert list(log["status"]) == ["ok", "failed", "ok"]
    assert "simulated failure 2" in log.loc[1, "error"] and np.isnan(log.loc[1, "loss_actor"])


def test_consecutive_failures_stop_training_with_a_message(tmp_path):
    with pytest.raises(TrainingStopped, match="3 consecutive episodes failed"):
        train(config(tmp_path, FakeRunner(fail=set(range(1, 99))), episodes=10, max_failures=3))
    assert list(pd.read_csv(tmp_path / "gym" / "log.csv")["status"]) == ["failed"] * 3


def test_jobs_batch_episodes_of_one_gym(tmp_path):
    runner = FakeRunner()
    log = train(config(tmp_path, runner, episodes=5, jobs=2, schedule="gym1:3,gym2:2"))
    assert [(g, len(ps)) for g, ps in runner.calls] == [("gym1", 2), ("gym1", 1), ("gym2", 2)]
    assert list(log["gym"]) == ["gym1"] * 3 + ["gym2"] * 2
    assert log.loc[0, "loss_actor"] == log.loc[1, "loss_actor"]  # one update on the joined batch


def test_gym_option_overrides_the_schedule(tmp_path):
    runner = FakeRunner()
    train(config(tmp_path, runner, episodes=2, gym="gym2"))
    assert {g for g, _ in runner.calls} == {"gym2"}


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_touched(tmp_path):
    train(config(tmp_path, FakeRunner(), episodes=1))
    final = tmp_path / "gym" / "actor_final.pth"
    final.write_bytes(b"not a checkpoint")
    before = sorted(p.name for p in (tmp_path / "gym").iterdir())
    with pytest.raises(CheckpointError, match="corrupt.*actor_epN.pth"):
        train(config(tmp_path, FakeRunner(), episodes=1))
    assert sorted(p.name for p in (tmp_path / "gym").iterdir()) == before


@pytest.mark.parametrize("kw,match", [({"jobs": 0}, "--jobs"), ({"epochs": 0}, "--epochs"), ({"lr": 0.0}, "--lr"),
                                      ({"steps": 4}, "steps must be an integer >= 8"),
                                      ({"start_episode": 0}, "--start-episode")])
def test_bad_options_fail_before_anything_is_written(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        Trainer(config(tmp_path, FakeRunner(), **kw))
    assert not (tmp_path / "gym").exists()


def test_a_foreign_log_is_refused_and_fresh_moves_it_aside(tmp_path):
    root = tmp_path / "gym"
    root.mkdir()
    (root / "log.csv").write_text("something,else\n1,2\n")
    with pytest.raises(ValueError, match="not a training log.*--fresh"):
        train(config(tmp_path, FakeRunner(), episodes=1))
    assert (root / "log.csv").read_text() == "something,else\n1,2\n"  # untouched
    log = train(config(tmp_path, FakeRunner(), episodes=1, fresh=True))
    assert list(log["episode"]) == [1]


class CheckedRunner(FakeRunner):
    """pwl episodes from FakeRunner; the SPICE check sees Vout off by ``spice_offset`` volts."""

    def __init__(self, spice_offset: float):
        super().__init__()
        self.offset = spice_offset

    def __call__(self, gym, actor, params, workdir, simulator=None, max_step=None, **kw):
        if simulator == "ngspice":
            assert max_step == pytest.approx(1 / 50e3 / 400)  # the check runs converged ngspice
        eps = super().__call__(gym, actor, params, workdir, simulator, **kw)
        for ep in eps:
            ep.rows["V(out)"] = 100.0 + (self.offset if simulator == "ngspice" else 0.0)
            ep.rows["V(duty)"] = 0.5
        return eps


def test_spice_check_logs_its_deviation_every_n_episodes(tmp_path):
    runner = CheckedRunner(spice_offset=0.001)
    log = train(config(tmp_path, runner, episodes=4, simulator="pwl", spice_check_every=2))
    checked = log.dropna(subset=["spice_vout_pct_of_vin"])
    assert checked["episode"].tolist() == [2, 4]
    np.testing.assert_allclose(checked["spice_vout_pct_of_vin"], 0.001 / checked["vin"] * 100, rtol=1e-9)
    assert (log["status"] == "ok").all()
    assert len(runner.calls) == 6  # 4 fast episodes and 2 SPICE checks


def test_spice_check_beyond_tolerance_stops_and_keeps_the_checkpoints(tmp_path):
    runner = CheckedRunner(spice_offset=0.5)  # 0.5 V on 150-250 V: beyond 0.05 % of vin
    with pytest.raises(TrainingStopped, match="disagree beyond the tolerance.*vout_pct_of_vin"):
        train(config(tmp_path, runner, episodes=4, simulator="pwl", spice_check_every=3))
    log = pd.read_csv(tmp_path / "gym" / "log.csv")
    assert log["status"].tolist() == ["ok", "ok", "spice_mismatch"]
    _, meta = load_checkpoint(tmp_path / "gym" / "actor_final.pth")
    assert meta["episode"] == 2  # the refused episode updated nothing
    # Resuming with the check off redoes episode 3 from the intact checkpoint.
    log = train(config(tmp_path, CheckedRunner(0.0), episodes=1, simulator="pwl", spice_check_every=0))
    assert log["episode"].tolist() == [1, 2, 3] and (log["status"] == "ok").all()


def test_spice_check_is_off_on_spice_and_validated():
    assert TrainConfig(simulator="ngspice").check_every == 0
    assert TrainConfig(simulator="pwl").check_every == 100
    with pytest.raises(ValueError, match="--spice-check-every"):
        Trainer(TrainConfig(simulator="pwl", spice_check_every=-1))


def test_a_batch_refused_by_the_spice_check_names_why_for_every_episode(tmp_path):
    # --jobs 2: episode 2 fails the check, episode 1 of the same batch was fine but updated nothing either.
    with pytest.raises(TrainingStopped, match="episode 2"):
        train(config(tmp_path, CheckedRunner(spice_offset=0.5), episodes=2, jobs=2, simulator="pwl",
                     spice_check_every=2))
    log = pd.read_csv(tmp_path / "gym" / "log.csv")
    assert log["status"].tolist() == ["not_updated", "spice_mismatch"]
    assert log["error"].iloc[0] == "not used for an update: the SPICE check refused episode 2 of this batch"
    assert "loss is not finite" not in " ".join(log["error"].astype(str))


class FileWritingRunner(FakeRunner):
    """A custom runner that writes its files wherever it likes and names them in Episode.artefacts."""

    def __init__(self, where):
        super().__init__()
        self.where = where

    def __call__(self, gym, actor, params, workdir, simulator=None, **kw):
        eps = super().__call__(gym, actor, params, workdir, simulator, **kw)
        for k, ep in enumerate(eps):
            nn_file, param_file = self.where / f"net{k}.sp", self.where / f"par{k}.txt"
            nn_file.write_text(f"* net of {ep.params.vin}\n")
            param_file.write_text(f".param vin={ep.params.vin}\n")
            ep.artefacts = {"nn": nn_file, "params": param_file}
        return eps


def test_a_custom_runner_keeps_its_episode_files(tmp_path):
    where = tmp_path / "elsewhere"
    where.mkdir()
    log = train(config(tmp_path, FileWritingRunner(where), episodes=2, jobs=2))
    root = tmp_path / "gym"
    for ep, vin in zip(log["episode"], log["vin"]):
        assert (root / f"BUCK_VM_BI_nn_ep{ep}.sp").read_text() == f"* net of {vin}\n"
        assert (root / f"BUCK_VM_BI_param_ep{ep}.txt").read_text() == f".param vin={vin}\n"
    assert (root / "BUCK_VM_BI_nn.sp").exists() and (root / "BUCK_VM_BI_param.txt").exists()


class MeanLearner:
    """A stand-in learner through the protocol: counts rows, moves nothing."""

    name = "count"

    def __init__(self, actor, config):
        self.seen, self.state = 0, {"updates": 0}

    def update(self, episodes):
        self.seen += sum(len(e.x) for e in episodes)
        self.state["updates"] += 1
        return 0.125

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


def test_a_learner_plugs_in_without_touching_the_loop(tmp_path):
    log = train(config(tmp_path, FakeRunner(), episodes=3, learner=MeanLearner))
    assert log["loss_actor"].tolist() == [0.125] * 3
    _, meta = load_checkpoint(tmp_path / "gym" / "actor_final.pth")
    assert meta["learner"] == "count" and meta["optimizer"] == {"updates": 3}
    trainer = Trainer(config(tmp_path, FakeRunner(), episodes=1, learner=MeanLearner))  # resumes its state
    assert trainer.learner.state == {"updates": 3}


def test_behaviour_imitation_refuses_a_recurrent_actor_saying_why():
    from torch import nn

    from buckbi.train import BehaviourImitation, RecurrentActorError
    with pytest.raises(RecurrentActorError, match="rows are a sequence"):
        BehaviourImitation(nn.Sequential(nn.GRUCell(19, 4), nn.Linear(4, 1)))
