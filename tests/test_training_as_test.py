"""Training as a test run: one test per episode, with the loss curve and waveforms attached to the report.

``pytest --buckbi-train-as-test --buckbi-episodes N --html=reports/training.html --self-contained-html``
"""
from __future__ import annotations

import numpy as np
import pytest

from buckbi.episodes.run import Episode
from buckbi.pytestplugin.extras import attach, episode_png, html_extras, loss_png

pytestmark = [pytest.mark.training, pytest.mark.ltspice]

DIVERGENCE = 10.0  # an episode's loss may not exceed this many times the best of the previous WINDOW
WINDOW = 5


def test_training_episode(training_episode, training_run, request):
    trainer = training_run
    extras = html_extras(request)
    assert trainer.next_episode == training_episode, (
        f"episode {training_episode} arrived while episode {trainer.next_episode} is next: a training run reported "
        "as a test runs every episode, in order, in one process (the plugin runs it without xdist)")
    rows, results = trainer.run_batch([training_episode])
    row, episode = rows.iloc[0], results[0]
    if isinstance(episode, Episode) and extras is not None:
        attach(extras, episode_png(episode.rows, f"episode {training_episode} ({row['gym']}), "
                                                 f"vin={row['vin']:.0f} V, vref={row['vref']:.0f} V"),
               f"episode {training_episode} waveforms")
    if extras is not None:
        attach(extras, loss_png(trainer.log), "loss per episode")
    assert row["status"] == "ok", f"episode {training_episode} failed in SPICE: {row['error']}"
    assert np.isfinite(row["loss_actor"]), "the loss is not finite"
    done = trainer.log[(trainer.log["status"] == "ok") & (trainer.log["episode"] < training_episode)]
    previous = done["loss_actor"].to_numpy()[-WINDOW:]
    if len(previous):
        assert row["loss_actor"] <= DIVERGENCE * previous.min(), (
            f"loss {row['loss_actor']:.3e} diverged: best of the previous {len(previous)} is {previous.min():.3e}")
