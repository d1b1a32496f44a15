"""Episode set-up without a simulator: parameter validation, random draws, the parameter file."""
from __future__ import annotations

import dataclasses

import math

import numpy as np
import pytest
from torch import nn

from buckbi import EpisodeError, EpisodeParams, prepare_episode
from buckbi.nn.checkpoint import seed_actor
from buckbi.episodes.run import INSTANCE, param_file_text, saved_traces


@pytest.mark.parametrize("field,value", [("vin", 0.0), ("ro", -5.0), ("Lo", math.nan), ("vref", math.inf),
                                         ("fsw", 0.0), ("vmax", -1.0)])
def test_non_positive_or_non_finite_values_are_rejected(field, value):
    kwargs = dict(vin=200.0, ro=10.0, Lo=50e-6, vref=100.0) | {field: value}
    with pytest.raises(EpisodeError, match=field):
        EpisodeParams(**kwargs)


def test_vref_must_be_below_vin():
    with pytest.raises(EpisodeError, match="vref .* must be below vin"):
        EpisodeParams(vin=100.0, ro=10.0, Lo=50e-6, vref=120.0)


@pytest.mark.parametrize("steps", [7, 0, 100.5, True])
def test_steps_must_be_an_integer_of_at_least_8(steps):
    with pytest.raises(EpisodeError, match="steps"):
        EpisodeParams(vin=200.0, ro=10.0, Lo=50e-6, vref=100.0, steps=steps)


def test_random_draws_stay_in_the_seed_ranges_and_repeat_with_the_seed():
    draws = [EpisodeParams.random(np.random.default_rng(3)) for _ in range(2)]
    assert draws[0] == draws[1]
    many = [EpisodeParams.random(np.random.default_rng(k), steps=256) for k in range(200)]
    for name, lo, hi in [("vin", 150, 250), ("ro", 5, 80), ("Lo", 20e-6, 100e-6), ("vref", 50, 150)]:
        values = np.array([getattr(p, name) for p in many])
        assert lo <= values.min() and values.max() <= hi
        assert values.max() - values.min() > 0.8 * (hi - lo)  # the draws cover the range
    assert {p.steps for p in many} == {256}


def test_derived_quantities():
    p = EpisodeParams(vin=200.0, ro=10.0, Lo=50e-6, vref=100.0, steps=2048)
    assert p.duration == pytest.approx(2050 / 50e3)
    assert p.vout_vin == pytest.approx(0.5)
    # the seed's Iout/Icrit with its L = 200 uH: Icrit = 0.5*vref*(vin-vref)/fsw/200u/vin
    assert p.iout_icrit == pytest.approx(10.0 / (0.5 * 100 * 100 / 50e3 / 200e-6 / 200))


def test_param_file_has_params_nn_instance_and_save(tmp_path):
    p = EpisodeParams(vin=200.0, ro=10.0, Lo=5e-05, vref=100.0, steps=64)
    text = param_file_text(p, tmp_path / "actor.sp", "gym1")
    lines = text.splitlines()
    assert lines[:7] == [".param vin=200.0", ".param ro=10.0", ".param Lo=5e-05", ".param vref=100.0",
                         ".param fsw=50000.0", ".param vmax=250.0", ".param STEPS=64"]  # the seed's, in its order
    assert lines[7:10] == [".param Lbuck=0.00025", ".param Cbuck=0.00022", ".param Resr=0.2449"]  # nominal parts
    # the reference converter's other values (reference.toml) and its teacher, then an ideal deployment
    assert lines[10:20] == [".param Rind=0.01", ".param Lesl=1.29e-08", ".param Rsw=0.01", ".param g=5.0",
                            ".param fz1=200.0", ".param fz2=1000.0", ".param fp1=20000.0", ".param fp2=40000.0",
                            ".param adc_levels=0", ".param delay_periods=0"]
    lines = lines[:7] + lines[7:10] + lines[18:]
    assert lines[12] == ".param maxstep=1e-06" and lines[13] == ".func buckbi_adc(x) {x}"
    assert lines[14] == "Btfb tfb 0 V=V(vsense)/{vmax}"  # the teacher's feedback, no ADC
    assert lines[15] == f'.include "{tmp_path / "actor.sp"}"'
    assert lines[16] == INSTANCE and INSTANCE.startswith("X99 NNin1 NNin2") and INSTANCE.endswith("NNout1 ActorSubckt")
    assert lines[17] == ".save " + " ".join(saved_traces("gym1"))
    assert "V(nnpwm)" in lines[17] and "V(NNout1)" in lines[17] and "V(NNin19)" in lines[17]
    behind = param_file_text(dataclasses.replace(p, adc_bits=10), tmp_path / "actor.sp", "gym1").splitlines()
    assert behind[22:24] == ["Btadc tadc 0 V=buckbi_adc(V(vsense)/{vmax})", "XTADC tadc tfb ctrlclk BUCKBI_SH"]
    assert not any("tfb" in ln for ln in param_file_text(p, None, "deploy").splitlines())  # no teacher there
    assert ".param maxstep=5e-08" in param_file_text(p, None, "teacher", max_step=5e-08)


def test_deploy_saves_no_label_and_teacher_no_nn():
    assert "V(nnpwm)" not in saved_traces("deploy")
    assert "V(NNout1)" not in saved_traces("teacher")


def test_prepare_episode_exports_the_actor_beside_the_param_file(tmp_path):
    p = EpisodeParams(vin=200.0, ro=10.0, Lo=5e-05, vref=100.0, steps=64)
    job = prepare_episode("gym2", seed_actor().eval(), p, tmp_path, name="e1")
    assert (tmp_path / "e1_actor.sp").read_text().startswith("*")
    assert ".subckt ActorSubckt NNin1" in (tmp_path / "e1_actor.sp").read_text()
    parts = ["load_rl.inc", "source_dc.inc", "ref_softstart.inc", "sense_direct.inc"]  # the start-up scenario's parts
    assert job.includes[0] == tmp_path / "e1_param.txt" and [p.name for p in job.includes[1:]] == parts
    assert job.netlist.name == "gym2.cir"


def test_bad_gym_or_missing_actor_is_a_clear_error(tmp_path):
    p = EpisodeParams(vin=200.0, ro=10.0, Lo=5e-05, vref=100.0)
    with pytest.raises(EpisodeError, match="unknown gym 'gym3'"):
        prepare_episode("gym3", seed_actor(), p, tmp_path)
    with pytest.raises(EpisodeError, match="pass an actor"):
        prepare_episode("gym1", None, p, tmp_path)


def test_actor_with_the_wrong_width_is_refused_before_any_run(tmp_path):
    p = EpisodeParams(vin=200.0, ro=10.0, Lo=5e-05, vref=100.0)
    with pytest.raises(EpisodeError, match="19 inputs .* expects 12 features"):
        prepare_episode("gym1", nn.Sequential(nn.Linear(12, 1)), p, tmp_path)
    with pytest.raises(EpisodeError, match="one output"):
        prepare_episode("gym1", nn.Sequential(nn.Linear(19, 2)), p, tmp_path)


def test_numpy_scalars_are_written_as_plain_numbers(tmp_path):
    import numpy as np
    p = EpisodeParams(vin=np.float64(200.5), ro=np.float32(10.0), Lo=5e-05, vref=np.float64(100.0),
                      steps=np.int64(64))
    text = param_file_text(p, None, "teacher")
    assert ".param vin=200.5\n" in text and ".param STEPS=64\n" in text and "np." not in text
    assert type(p.vin) is float and type(p.steps) is int


def test_the_exported_actor_is_reused_until_its_weights_change():
    import torch

    from buckbi.nn.checkpoint import seed_actor
    from buckbi.engines.spice import exported_text
    torch.manual_seed(0)
    actor = seed_actor()
    first = exported_text(actor, "ngspice", "fast")
    assert exported_text(actor, "ngspice", "fast") is first  # the same state: not exported again
    opt = torch.optim.Adam(actor.parameters(), lr=1e-2)
    actor(torch.randn(4, 19)).sum().backward()
    opt.step()  # in place: the version counters move
    stepped = exported_text(actor, "ngspice", "fast")
    assert stepped != first and stepped == exported_text(seed_actor_like(actor), "ngspice", "fast")
    actor.load_state_dict(seed_actor_like(actor, fresh=True).state_dict())
    assert exported_text(actor, "ngspice", "fast") != stepped
    assert exported_text(actor, "ltspice", "fast") != exported_text(actor, "ngspice", "fast")


def seed_actor_like(actor, fresh: bool = False):
    """A second module with ``actor``'s weights (or new random ones)."""
    import copy

    import torch
    other = copy.deepcopy(actor)
    if fresh:
        with torch.no_grad():
            for p in other.parameters():
                p.add_(1.0)
    return other
