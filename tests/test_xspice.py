"""buckbi's XSPICE network element: the same numbers as PyTorch and as the portable subcircuit, in ngspice."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from buckbi import EpisodeParams, export_model
from buckbi.episodes.run import choose_nn_element, run_episode
from buckbi.export import ExportError, step_reference
from buckbi.export.verify import spice_forward
from buckbi.nn.netlist_actor import NetlistActor
from buckbi.sim import NgspiceBackend, SimJob, run_netlist

EQUIV_TOL = 1e-6  # the equivalence bound at every sampled row
EXACT = 1e-12  # float64 in C against float64 in PyTorch


def _net(seed: int, *acts: nn.Module, widths=(4, 7, 5, 2)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1]))
        if k < len(acts):
            layers.append(acts[k])
    return nn.Sequential(*layers).double().eval()


@pytest.mark.parametrize("acts", [
    (nn.ReLU(), nn.Sigmoid(), nn.Tanh()),
    (nn.SiLU(), nn.Hardtanh(-0.4, 0.9), nn.Hardsigmoid()),
    (nn.LeakyReLU(0.05), nn.ELU(0.7), nn.Softplus(1.5, 2.0)),
], ids=["relu-sigmoid-tanh", "silu-hardtanh-hardsigmoid", "leaky-elu-softplus"])
def test_operating_point_matches_torch(codemodel, tmp_path, acts):
    net = _net(1, *acts)
    x = np.random.default_rng(2).uniform(-3, 3, (40, 4))
    got = spice_forward(net, x, structure="xspice", codemodel=codemodel, workdir=tmp_path)
    assert got.shape == (40, 2)
    assert np.abs(got - step_reference(net, x)).max() <= EXACT


def test_small_signal_gain_is_torchs_jacobian(codemodel, tmp_path):
    # ngspice's AC analysis reads the element's partials: the same ones Newton uses in a transient.
    net = _net(3, nn.Tanh(), nn.ReLU(), nn.Sigmoid(), widths=(3, 6, 5, 2))
    x = np.array([0.3, -0.2, 0.7])
    lines = ["* jacobian", export_model(net, structure="xspice", codemodel=codemodel)]
    for k in range(3):  # instance k: AC 1 on input k only
        lines += [f"VX{k}_{i} x{k}_{i} 0 DC {float(x[i])!r}" + (" AC 1" if i == k else "") for i in range(3)]
        lines.append(f"XN{k} x{k}_0 x{k}_1 x{k}_2 y{k}_0 y{k}_1 ActorSubckt")
    traces = [f"V(y{k}_{j})" for k in range(3) for j in range(2)]
    lines += [".save " + " ".join(traces), ".ac lin 1 1 1", ".end"]
    row = run_netlist(SimJob("\n".join(lines), traces=traces, name="jac"), tmp_path).data.iloc[0]
    got = np.array([[row[f"V(y{k}_{j})"] for k in range(3)] for j in range(2)])
    expected = torch.autograd.functional.jacobian(net, torch.tensor(x)).numpy()
    assert np.abs(expected).max() > 1e-3
    assert np.abs(got - expected).max() <= EXACT


@pytest.mark.parametrize("gym", ["gym2", "deploy"])
def test_network_in_the_loop_gives_the_subcircuits_rows(codemodel, tmp_path, gym):
    # The code model and the portable subcircuit put ngspice's time points in slightly different places (the
    # subcircuit's nodes take part in the step control), so the loops agree within ngspice's own step error,
    # not bit for bit. Measured over 2048 periods: see the README's speed table.
    from buckbi.pwl.agreement import DEFAULT_STEP, deviation, violations
    torch.manual_seed(5)
    actor = nn.Sequential(nn.Linear(19, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1),
                          nn.Sigmoid()).eval()
    params = EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0, steps=300)
    fast = run_episode(gym, actor, params, tmp_path / "x", nn_element="xspice")
    portable = run_episode(gym, actor, params, tmp_path / "s", nn_element="subckt")
    assert "xspice structure" in (tmp_path / "x" / "ep0_actor.sp").read_text()
    assert "fast structure" in (tmp_path / "s" / "ep0_actor.sp").read_text()
    for ep in (fast, portable):
        assert np.abs(ep.pred - step_reference(actor, ep.x.copy())[:, 0]).max() <= EQUIV_TOL
    dev = deviation(fast, portable)
    assert not violations(dev, DEFAULT_STEP), dev
    assert dev["vout_pct_of_vin"] <= 0.05


def test_choice_of_element(codemodel, simulator, monkeypatch):
    monkeypatch.delenv("BUCKBI_NN_ELEMENT", raising=False)  # (pytest --buckbi-nn-element sets it)
    ff = _net(0, nn.ReLU(), widths=(19, 8, 1))
    assert choose_nn_element(ff, simulator) == "xspice"
    assert choose_nn_element(ff, simulator, choice="subckt") == "subckt"
    assert choose_nn_element(ff, simulator, nn_in_circuit=False) == "subckt"  # gym 1's rows: the portable file
    recurrent = nn.Sequential(nn.Linear(19, 4), nn.GRUCell(4, 1))
    assert choose_nn_element(recurrent, simulator) == "subckt"
    lt_mode = NgspiceBackend(simulator.executable, compatibility="ltpsa")
    assert choose_nn_element(ff, lt_mode) == "subckt"
    assert choose_nn_element(ff, lt_mode, choice="xspice") == "subckt"  # insists only where it applies
    assert choose_nn_element(ff, simulator, choice="xspice") == "xspice"
    netlist = NetlistActor(Path("actor.sp"), export_model(_net(0, widths=(19, 1))), "portable")
    assert choose_nn_element(netlist, simulator) == "subckt"
    monkeypatch.setenv("BUCKBI_NN_ELEMENT", "subckt")
    assert choose_nn_element(ff, simulator) == "subckt"
    monkeypatch.setenv("BUCKBI_NN_ELEMENT", "spice")
    with pytest.raises(ValueError, match="nn_element must be one of"):
        choose_nn_element(ff, simulator)


def test_a_code_model_under_a_folder_with_capitals_is_loaded(codemodel, tmp_path):
    # ngspice lowercases the netlist's pre_codemodel path: a checkout in /home/Alice/... could not load it
    import shutil
    upper = tmp_path / "CheckOut"
    upper.mkdir()
    copy = upper / "buckbi.cm"
    shutil.copy(codemodel, copy)
    net = _net(1, nn.ReLU(), nn.Sigmoid(), nn.Tanh())
    x = np.random.default_rng(3).uniform(-3, 3, (10, 4))
    got = spice_forward(net, x, structure="xspice", codemodel=copy, workdir=tmp_path / "run")
    assert np.abs(got - step_reference(net, x)).max() <= EXACT


def test_export_errors_name_the_fix(tmp_path, monkeypatch):
    ff = _net(0, nn.ReLU())
    with pytest.raises(ExportError, match="ltspice dialect needs structure 'fast' or 'plain'"):
        export_model(ff, dialect="ltspice", structure="xspice", codemodel="/x/buckbi.cm")
    with pytest.raises(ExportError, match="recurrent state"):
        export_model(nn.Sequential(nn.Linear(3, 2), nn.GRUCell(2, 2)), structure="xspice", codemodel="/x/buckbi.cm")
    with pytest.raises(ExportError, match="spaces"):
        export_model(ff, structure="xspice", codemodel="/my models/buckbi.cm")
    # Nothing built where buckbi looks: the error says how to build it.
    import buckbi.xspice as xs
    monkeypatch.delenv(xs.ENV_PATH, raising=False)
    monkeypatch.setattr(xs, "install_dirs", lambda: [tmp_path / "none"])
    xs._find.cache_clear()
    try:
        with pytest.raises(ExportError, match=r"python -m buckbi.xspice build"):
            export_model(ff, structure="xspice")
        ff19, backend = _net(0, nn.ReLU(), widths=(19, 4, 1)), NgspiceBackend()
        if backend.is_available():
            with pytest.raises(xs.CodeModelError, match=r"not available.*python -m buckbi.xspice build"):
                choose_nn_element(ff19, backend, choice="xspice")  # insisting: an error, not the fallback
            with pytest.warns(RuntimeWarning, match="runs in ngspice as the portable subcircuit"):
                monkeypatch.setattr(xs, "_warned", False)
                assert choose_nn_element(ff19, backend) == "subckt"
    finally:
        xs._find.cache_clear()


def test_stale_build_is_not_used(codemodel, tmp_path, monkeypatch):
    # A build of other sources (its stamp differs) is ignored rather than loaded.
    import buckbi.xspice as xs
    stale = tmp_path / "buckbi.cm"
    stale.write_bytes(codemodel.read_bytes())
    stale.with_suffix(".stamp").write_text("ngspice-39 0000\n")
    monkeypatch.setenv(xs.ENV_PATH, str(stale))
    monkeypatch.setattr(xs, "install_dirs", lambda: [])
    xs._find.cache_clear()
    try:
        assert xs.codemodel_path() is None
        stale.with_suffix(".stamp").write_text(xs.stamp_text(xs.ngspice_version()))
        xs._find.cache_clear()
        assert xs.codemodel_path() == stale
    finally:
        xs._find.cache_clear()


def test_build_refuses_what_it_cannot_build(tmp_path, monkeypatch):
    # No ngspice build runs here: each refusal comes before compiling and says what to do.
    import buckbi.xspice.build as b
    monkeypatch.setattr(b, "ngspice_version", lambda: "ngspice-44")
    monkeypatch.setattr(b, "_find", lambda version: None)
    with pytest.raises(b.UnsupportedNgspice, match="ngspice-44 is installed, so the network runs as the portable"):
        b.build()
    monkeypatch.setattr(b, "ngspice_version", lambda: None)
    with pytest.raises(b.UnsupportedNgspice, match="apt-get install -y ngspice"):
        b.build()
    bogus = tmp_path / "ngspice.tar.gz"
    bogus.write_bytes(b"not the source")
    monkeypatch.setenv(b.ENV_SOURCE, str(bogus))
    with pytest.raises(b.CodeModelError, match=r"sha256 .* expected d2a934d0"):
        b.source_tarball("ngspice-39")
    monkeypatch.setenv(b.ENV_SOURCE, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(b.CodeModelError, match="does not exist"):
        b.source_tarball("ngspice-39")
    monkeypatch.setattr(b.shutil, "which", lambda name: None if name == "bison" else "/usr/bin/" + name)
    with pytest.raises(b.CodeModelError, match="needs bison: sudo apt-get install -y gcc bison flex"):
        b._tools()
