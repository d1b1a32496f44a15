"""The fast simulator's pieces against slow, obviously correct references (no SPICE): the circuit is read from
circuits/parts, the modal propagation equals scipy's expm, the switch schedule equals the sampled saw, the
compiled actor equals PyTorch."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from torch import nn

from buckbi.nn.checkpoint import seed_actor
from buckbi.pwl import PwlUnsupportedError, compile_actor, read_circuit
from buckbi.pwl.circuit import LEFT_OUT, MODELLED, PARTS, CircuitParseError, part_elements
from buckbi.pwl.kernel import _saw, switch_toggles
from buckbi.pwl.network import mlp
from buckbi.pwl.propagate import modal_step
from buckbi.pwl.model import N_INPUTS, N_MODES, N_STATES, modal_model

PROPAGATION_TOL = 1e-9  # relative, modal form vs expm of the augmented matrix


def test_every_element_of_the_parts_is_modelled_or_named_as_left_out():
    missing = [e for e in part_elements() if e not in MODELLED and e not in LEFT_OUT]
    assert not missing, f"circuits/parts has elements the fast model does not know: {missing}"


def test_values_come_from_the_parts(tmp_path):
    c = read_circuit()
    assert (c.L, c.C, c.Rc, c.ron) == (250e-6, 220e-6, 0.2449, 10e-3)  # the reference schematic's values
    assert c.period == pytest.approx(20e-6) and c.saw_tr == pytest.approx(19.9e-6)
    # Change the inductor in a copy of the parts: the fast model follows, there is no second copy of the value.
    parts = tmp_path / "parts"
    shutil.copytree(PARTS, parts)
    buck = parts / "buck.inc"
    buck.write_text(buck.read_text().replace("L1 sw l1r {Lbuck}", "L1 sw l1r 180u"))
    assert read_circuit(parts=parts).L == pytest.approx(180e-6)
    # (the nominal L1, C1 and ESR are the component table's, which buck.inc reads as .params)
    assert "L1 sw l1r {Lbuck}" in (PARTS / "buck.inc").read_text()
    buck.write_text(buck.read_text().replace("VSAW saw 0 PULSE(", "VSAW saw 0 SIN("))
    with pytest.raises(CircuitParseError, match="saw PULSE"):
        read_circuit(parts=parts)


@pytest.mark.parametrize("load_step", [False, True], ids=["rl-load", "load-step"])
def test_modal_propagation_equals_expm_in_every_mode(load_step):
    c = read_circuit()
    m = modal_model(c, 20.0, 50e-6, 250.0, load_step)
    rng = np.random.default_rng(1)
    n, k = N_STATES, N_INPUTS
    for mode in range(N_MODES):
        x0, u0, u1 = rng.normal(size=n), rng.normal(size=k), rng.normal(size=k) * 1e4
        x0[6] = 0.5
        for tau in (3e-9, 1.7e-6, 12e-6):
            # Reference: x' = A x + B u with u(s) = u0 + u1 s, as one augmented linear system [x, u, u1]
            # (u' = u1, u1' = 0), advanced by scipy's expm.
            aug = np.zeros((n + 2 * k, n + 2 * k))
            aug[:n, :n], aug[:n, n:n + k] = m.A[mode], m.B[mode]
            aug[n:n + k, n + k:] = np.eye(k)
            w = expm(aug * tau) @ np.concatenate([x0, u0, u1])
            z0 = m.Vi[mode] @ x0
            z = np.empty(n, complex)
            modal_step(m.lam[mode], z0, m.ViB[mode] @ u0, m.ViB[mode] @ u1, tau, z)
            x = (m.V[mode] @ z).real
            frozen = np.all(m.A[mode] == 0, axis=1)  # held states: the kernel keeps them; expm does too
            scale = np.abs(w[:n]).max()
            err = np.abs(x - w[:n])[~frozen].max() / scale
            assert err <= PROPAGATION_TOL, f"mode {mode}, tau {tau}: relative error {err:.2e}"


@pytest.mark.parametrize("duty", [0.0, 0.0003, 0.2, 0.5, 0.93, 0.9995, 1.0, 1.2])
def test_switch_schedule_equals_the_sampled_saw(duty):
    c = read_circuit()
    thr = duty - c.switch_vt / c.comparator_gain
    for ta in (0.0, 11.18e-6, 11.18e-6 + 37 * c.period):
        tb = ta + c.period
        tt, ss = np.empty(8), np.empty(8)
        on, n = switch_toggles(thr, ta, tb, c.saw_td, c.saw_tr, c.saw_pw, c.saw_tf, c.period, tt, ss)
        grid = np.linspace(ta, tb, 40001)[:-1]
        expected = np.array([_saw(t, c.saw_td, c.saw_tr, c.saw_pw, c.saw_tf, c.period) < thr for t in grid])
        got = np.full(len(grid), on)
        for t, s in zip(tt[:n], ss[:n]):
            got[grid >= t] = s > 0.5
        assert np.mean(got != expected) <= 2 / len(grid)  # at most the grid points next to a toggle


@pytest.mark.parametrize("layers", [
    [nn.Linear(19, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid()],
    [nn.Linear(19, 8), nn.Tanh(), nn.Linear(8, 8), nn.LeakyReLU(0.1), nn.Linear(8, 1)],
    [nn.Linear(19, 8), nn.ELU(0.7), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 1), nn.Hardsigmoid()],
    [nn.Linear(19, 8), nn.Softplus(beta=2.0, threshold=5.0), nn.Linear(8, 1), nn.Hardtanh(-0.5, 0.8)],
])
def test_compiled_actor_equals_pytorch(layers):
    torch.manual_seed(0)
    model = nn.Sequential(*layers).double().eval()
    net = compile_actor(model)
    xs = np.random.default_rng(2).normal(size=(64, 19)) * 3
    with torch.no_grad():
        expected = model(torch.from_numpy(xs)).numpy().ravel()
    got = np.array([mlp(x, *net) for x in xs])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_actors_the_kernel_cannot_compile_say_so():
    with pytest.raises(PwlUnsupportedError, match="--simulator ngspice"):
        compile_actor(nn.Sequential(nn.Linear(19, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 1)))
    with pytest.raises(PwlUnsupportedError, match="one output"):
        compile_actor(nn.Sequential(nn.Linear(19, 2)))
    with pytest.raises(PwlUnsupportedError):
        compile_actor(nn.Sequential(nn.GRUCell(19, 1)))


def test_seed_actor_compiles():
    shapes = compile_actor(seed_actor())[2]
    assert shapes.tolist() == [[32, 19], [16, 32], [1, 16]]


def test_the_kernels_inline_actor_equals_the_allocating_one():
    from buckbi.pwl.network import mlp_into
    torch.manual_seed(1)
    net = compile_actor(seed_actor())
    buf = np.empty((2, 32))
    for x in np.random.default_rng(3).normal(size=(32, 19)):
        assert mlp_into(x, *net, buf) == mlp(x, *net)


# Episodes for the kernel's own checks: start-up with the teacher clamping, a light load in DCM, a load step.
KERNEL_CASES = [("teacher", dict(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0), "startup"),
                ("teacher", dict(vin=240.0, ro=400.0, Lo=50e-6, vref=60.0), "startup"),
                ("gym1", dict(vin=150.0, ro=10.0, Lo=100e-6, vref=120.0), "loadstep")]  # (the teacher drives)


@pytest.mark.parametrize("gym,point,scenario", KERNEL_CASES, ids=["startup", "dcm", "loadstep"])
def test_the_event_bound_only_skips_checks_never_an_event(gym, point, scenario):
    """Where the kernel's bound says no mode boundary is reached it steps at once; with the bound switched off it
    checks every T/20 instead: the episodes must agree (to rounding), so the bound never skipped an event."""
    import sys

    from buckbi.converters.buck import EpisodeParams
    from buckbi.converters.buck.scenarios import scenario_params
    from buckbi.pwl.kernel import episode
    S = sys.modules["buckbi.pwl.simulate"]
    torch.manual_seed(0)
    params = scenario_params(EpisodeParams(**point, steps=400), scenario)
    runs = []
    for bounded in (True, False):
        a = S.episode_arguments(gym, params, scenario, sub=20)
        a["bounded"] = a["bounded"] & bounded
        episode(*(a[k] for k in S._EPISODE_ARGS), *S._network(gym, seed_actor().double()),
                *(a[k] for k in S._EPISODE_ARGS_2), 20, *(a[k] for k in S._EPISODE_ARGS_3), S._teacher_runs(gym))
        runs.append(a)
    assert runs[0]["bounded"].all() and not runs[1]["bounded"].any()
    vout = runs[1]["rows"][:, 1]
    np.testing.assert_allclose(runs[0]["rows"][:, 1], vout, rtol=0, atol=1e-9 * np.abs(vout).max())
    np.testing.assert_allclose(runs[0]["wave"][:, 1], runs[1]["wave"][:, 1], rtol=0, atol=1e-9 * np.abs(vout).max())
    np.testing.assert_allclose(runs[0]["rows"][:, 22], runs[1]["rows"][:, 22], rtol=0, atol=1e-9)  # the teacher


def test_a_batch_of_episodes_equals_each_episode_alone():
    from dataclasses import replace

    from buckbi.nn.actors import seed_pretrained_actor
    from buckbi.converters.buck import EpisodeParams
    from buckbi.pwl.simulate import simulate, simulate_batch
    actor = seed_pretrained_actor()
    base = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=300)
    draws = [base, replace(base, vin=150.0, ro=60.0), replace(base, L1=base.L1 * 1.2, C1=base.C1 * 0.8, ESR=0.5),
             replace(base, steps=200, adc_bits=10, noise_mV=20.0, noise_seed=2)]  # shorter: padded in the batch
    batch = simulate_batch("deploy", actor, draws, sub=20)
    for p, (rows, wave, ext) in zip(draws, batch):
        alone = simulate("deploy", actor, p, sub=20)
        np.testing.assert_array_equal(rows, alone[0])
        np.testing.assert_array_equal(wave, alone[1])
        np.testing.assert_array_equal(ext, alone[2])
    assert len(batch[3][0]) == 201


def test_the_compiled_kernels_are_cached_per_version_of_their_sources(tmp_path, monkeypatch):
    """numba keys its cache by one file; a kernel calling into another file would run stale code after an upgrade.
    The cache folder is named after all the kernel's sources."""
    from buckbi.pwl import jit
    before = jit.cache_dir()
    assert before is not None and before.parent.name == "numba"
    monkeypatch.setattr(jit, "SOURCES", jit.SOURCES + (tmp_path / "extra.py",))
    (tmp_path / "extra.py").write_text("x = 1\n")
    assert jit.cache_dir() != before
