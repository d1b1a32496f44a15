"""The shipped network (--actor pretrained) is the signoff recipe's, and has the margins it was trained for at the
default plan's continuous-conduction corners, alone and behind a one-period delay (POP + AC on the fast engine)."""
from __future__ import annotations

import numpy as np
import pytest

from buckbi.converters.buck.spec import EpisodeParams
from buckbi.loopgain.margins import margins
from buckbi.loopgain.pop import loop_gain
from buckbi.nn.actors import PRETRAINED_FILE, pretrained_actor
from buckbi.nn.checkpoint import load_checkpoint

F = np.geomspace(10.0, 25e3, 120)
CCM = [EpisodeParams(vin=vin, vref=vref, ro=ro, Lo=50e-6) for vin in (150.0, 200.0, 250.0)
       for vref in (60.0, 100.0, 140.0) for ro in (10.0, 20.0)]


def test_the_shipped_network_is_the_signoff_recipes_selection():
    _, meta = load_checkpoint(PRETRAINED_FILE)
    assert meta["recipe"] == "signoff" and meta["selected_by"].startswith("the default plan's tests at the validation")


@pytest.mark.parametrize("p", CCM, ids=lambda p: f"vin{p.vin:g}-vref{p.vref:g}-ro{p.ro:g}")
def test_the_shipped_network_keeps_45_degrees_where_the_plan_asks_them(p):
    actor = pretrained_actor()
    nn_lg, teacher = loop_gain("nn", actor, p, F), loop_gain("teacher", None, p, F)
    m, t = margins(F, nn_lg.T), margins(F, teacher.T)
    assert nn_lg.critical_pole < 1.0 and m.phase_margin_deg >= 45.0, (m, t)
    # not a sluggish loop bought with margin: its crossover within a factor 3 of the teacher's (measured 0.42-1.34x,
    # lowest at vin 250 V, vref 60 V, where the teacher's is highest)
    assert 1 / 3 < m.crossover_Hz / t.crossover_Hz < 3


@pytest.mark.parametrize("vin", [150.0, 200.0, 250.0])
def test_behind_a_one_period_delay_it_keeps_30_degrees(vin):
    p = EpisodeParams(vin=vin, vref=100.0, ro=20.0, Lo=50e-6, delay_periods=1)
    m = margins(F, loop_gain("nn", pretrained_actor(), p, F).T)
    assert m.phase_margin_deg >= 30.0, m
