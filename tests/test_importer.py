"""Other exporters' files imported as PyTorch models (buckbi.importers.subckt): the reference's published actor in ngspice
equals the imported model within the file's printed precision; unreadable files are refused with the line."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from buckbi.importers.subckt import ImportError_, import_network
from buckbi.nn.netlist_actor import PUBLISHED, published_actor
from buckbi.sim import NgspiceBackend, SimJob, run_netlist

PRINTED = 1e-6  # the file prints 6 decimals; the model takes them as they are, so file and model agree far closer


def file_in_ngspice(text: str, xs: np.ndarray, tmp_path) -> np.ndarray:
    """The subcircuit file itself, one instance per input row, in one .op (LTspice syntax: ngspice's LT mode)."""
    lines = ["* the file as written", text]
    for k, row in enumerate(xs):
        lines += [f"VX{k}_{i} x{k}_{i} 0 {float(v)!r}" for i, v in enumerate(row)]
        lines.append(f"XNN{k} " + " ".join(f"x{k}_{i}" for i in range(xs.shape[1])) + f" y{k} ActorSubckt")
    traces = [f"V(y{k})" for k in range(len(xs))]
    lines += [".save " + " ".join(traces), ".options reltol=1e-9 vntol=1e-12", ".op", ".end"]
    res = run_netlist(SimJob("\n".join(lines), traces=traces), tmp_path,
                      simulator=NgspiceBackend(compatibility="ltpsa"))
    return res.data.iloc[0][traces].to_numpy(dtype=float)


def test_the_published_actor_imports_as_the_seed_network():
    net = import_network(PUBLISHED)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "Sigmoid"]
    assert [m.weight.shape for m in net if hasattr(m, "weight")] == [(32, 19), (16, 32), (1, 16)]


@pytest.mark.ltspice
def test_the_imported_model_equals_the_file_in_ngspice(simulator, tmp_path):
    net = import_network(PUBLISHED)
    xs = np.random.default_rng(0).uniform(-0.3, 1.0, size=(32, 19))
    got = file_in_ngspice(published_actor().text, xs, tmp_path)
    with torch.no_grad():
        want = net(torch.from_numpy(xs)).numpy().ravel()
    err = np.abs(got - want)
    assert err.max() <= PRINTED, f"worst |file - imported| {err.max():.2e}"


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("IF(V(L1_3)>0,V(L1_3),0)", "IF(V(L1_3)>0.5,V(L1_3),0)"), "cannot read"),
    (lambda t: t.replace("(0.253910))", "(0.253910)+(1.0))"), "more than one constant"),
    (lambda t: t.replace("V(NNIN6)*(2.059755)", "V(XX)*(2.059755)"), "not an output of the layer before"),
])
def test_a_file_it_cannot_read_names_the_line_and_the_reason(tmp_path, edit, message):
    bad = tmp_path / "bad.sp"
    bad.write_text(edit(PUBLISHED.read_text()))
    with pytest.raises(ImportError_, match=message):
        import_network(bad)


def test_import_cli_writes_a_checkpoint_and_published_runs_on_the_fast_simulator(tmp_path):
    import subprocess
    import sys

    from buckbi.nn.actors import resolve_actor
    from buckbi.nn.checkpoint import load_checkpoint
    from buckbi.converters.buck import EpisodeParams
    from buckbi.episodes.run import run_episode
    res = subprocess.run([sys.executable, "-m", "buckbi", "import", str(PUBLISHED), "--out", str(tmp_path / "a.pth")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    model, meta = load_checkpoint(tmp_path / "a.pth")
    xs = torch.from_numpy(np.random.default_rng(1).uniform(-0.3, 1.0, size=(64, 19)))
    with torch.no_grad():
        assert (model.double()(xs) - import_network(PUBLISHED)(xs)).abs().max() <= PRINTED
    assert meta["source"] == str(PUBLISHED)
    assert isinstance(resolve_actor("published"), torch.nn.Module)  # --actor published: the imported model
    assert not isinstance(resolve_actor(netlist="published"), torch.nn.Module)  # --netlist published: the file
    ep = run_episode("deploy", resolve_actor("published"), EpisodeParams(vin=200.0, ro=20.0, Lo=50e-6, vref=100.0,
                                                                         steps=512), tmp_path, "pwl")
    assert abs(ep.rows["V(out)"].iloc[-50:].mean() - 100.0) < 1.0  # it regulates there
    bad = subprocess.run([sys.executable, "-m", "buckbi", "import", str(tmp_path / "none.sp"), "--out", "x.pth"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TEXT = PUBLISHED.read_bytes()
LINES = TEXT.split(b"\n")


@st.composite
def damaged(draw) -> bytes:
    """The published file with one kind of damage: cut, a line dropped or duplicated, bytes replaced, a number
    made NaN/inf/huge, a port removed, non-UTF-8 bytes."""
    kind = draw(st.sampled_from(["cut", "drop", "dup", "bytes", "number", "port", "latin1"]))
    if kind == "cut":
        return TEXT[:draw(st.integers(0, len(TEXT)))]
    if kind in ("drop", "dup"):
        i = draw(st.integers(0, len(LINES) - 1))
        return b"\n".join(LINES[:i] + ([LINES[i]] * 2 if kind == "dup" else []) + LINES[i + 1:])
    if kind == "bytes":
        i = draw(st.integers(0, len(TEXT) - 1))
        return TEXT[:i] + draw(st.binary(min_size=1, max_size=8)) + TEXT[i + 1:]
    if kind == "number":
        return TEXT.replace(b"(0.253910)", b"(" + draw(st.sampled_from([b"nan", b"inf", b"1e400", b"-1e999", b"x"])) + b")")
    if kind == "port":
        return TEXT.replace(b" NNIN19 NNOUT1", b" NNOUT1", 1)
    return TEXT.replace(b"LAYER 1", "LAYER \u00e9".encode("latin-1"), 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged())
def test_a_damaged_file_gives_a_clear_error_or_a_finite_network(tmp_path, data):
    from buckbi.nn.netlist_actor import NetlistActorError
    path = tmp_path / "damaged.sp"
    path.write_bytes(data)
    try:
        net = import_network(path)
    except NetlistActorError as err:  # ImportError_ is one: the file and the reason, never a traceback of ours
        assert str(path) in str(err) or "netlist" in str(err)
        return
    for p in net.parameters():
        assert torch.isfinite(p).all(), "a network with non-finite weights must be refused"


# --- the reference exporter's recurrent cells (.machine) -----------------------------------------------------------
# Files written by the reference's own exporter (pytorch2ltspice 0.1.4, a test dependency) from seeded PyTorch models.
RECURRENT = {
    "rnn_tanh": lambda: torch.nn.Sequential(torch.nn.RNNCell(5, 4), torch.nn.Linear(4, 1), torch.nn.Tanh()),
    "rnn_relu": lambda: torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.ReLU(),
                                            torch.nn.RNNCell(6, 4, nonlinearity="relu"), torch.nn.Linear(4, 1)),
    # the reference's GRU example's shape: Linear -> ReLU -> GRUCell -> Linear -> Tanh
    "gru": lambda: torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.GRUCell(16, 8),
                                       torch.nn.Linear(8, 1), torch.nn.Tanh()),
    "lstm_x2": lambda: torch.nn.Sequential(torch.nn.Linear(7, 8), torch.nn.ReLU(), torch.nn.LSTMCell(8, 5),
                                           torch.nn.LSTMCell(5, 3), torch.nn.Linear(3, 1), torch.nn.Tanh()),
}
# 6 printed decimals: each weight within 5e-7 of the model's; through these sizes the outputs stay within 1e-5.
STEPPED = 1e-5


def _reference_file(kind: str, tmp_path):
    p2l = pytest.importorskip("pytorch2ltspice", reason="the reference's exporter: ./buckbi.sh test installs it")
    torch.manual_seed(3)
    model = RECURRENT[kind]().double().eval()
    path = tmp_path / f"{kind}.sp"
    p2l.export_model_to_ltspice(model, filename=str(path), subckt_name="ActorSubckt", verbose=False)
    return model, path


def _printed(t) -> np.ndarray:
    """The values as the file prints them (6 decimals)."""
    a = t.detach().numpy()
    return np.array([float(f"{v:.6f}") for v in a.ravel()]).reshape(a.shape)


def _cells(net):
    return [m for m in net.modules() if isinstance(m, (torch.nn.RNNCell, torch.nn.GRUCell, torch.nn.LSTMCell))]


@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_the_reference_exporters_recurrent_cells_import_with_their_printed_weights(kind, tmp_path):
    from buckbi import step_reference
    model, path = _reference_file(kind, tmp_path)
    text = path.read_text()
    assert ".machine" in text and " CLK NNOUT1" in text.splitlines()[0]  # the reference's port order
    net = import_network(path)
    assert [type(m).__name__ for m in net] == [type(m).__name__ for m in model]
    for got, want in zip(_cells(net), _cells(model)):
        g = got.weight_ih.shape[0] // got.hidden_size  # gates: 1 RNN, 3 GRU, 4 LSTM
        summed = 2 * got.hidden_size if g == 3 else g * got.hidden_size  # biases the file prints as b_ih + b_hh
        np.testing.assert_array_equal(got.weight_ih.detach(), _printed(want.weight_ih))
        np.testing.assert_array_equal(got.weight_hh.detach(), _printed(want.weight_hh))
        np.testing.assert_allclose((got.bias_ih + got.bias_hh).detach()[:summed],
                                   _printed(want.bias_ih + want.bias_hh)[:summed], atol=1e-12)
        if g == 3:  # the GRU's n gate keeps b_in and b_hn apart (r multiplies the hidden part)
            np.testing.assert_array_equal(got.bias_ih.detach()[summed:], _printed(want.bias_ih)[summed:])
            np.testing.assert_array_equal(got.bias_hh.detach()[summed:], _printed(want.bias_hh)[summed:])
    n_in = model[0].in_features if isinstance(model[0], torch.nn.Linear) else model[0].input_size
    xs = np.random.default_rng(4).normal(size=(40, n_in))
    want, got = step_reference(model, xs), step_reference(net, xs)
    assert np.ptp(want) > 1e-2  # the state moves: a cell read as feed-forward could not pass
    assert np.abs(got - want).max() <= STEPPED


@pytest.mark.ltspice
def test_an_imported_gru_runs_in_ngspice_as_the_reference_file_steps(simulator, tmp_path):
    """The .machine file runs in LTspice only; imported, the network runs in ngspice (buckbi's cells, the reference's
    port order and timing) and steps as the model the file was written from."""
    from buckbi import step_reference
    from buckbi.export.verify import spice_step
    model, path = _reference_file("gru", tmp_path)
    net = import_network(path)
    xs = np.random.default_rng(6).normal(size=(12, 8))
    got = spice_step(net, xs, dialect="ngspice")
    assert np.abs(got - step_reference(model, xs)).max() <= STEPPED


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace(".rule LATCH HI V(CLK)>.9", ".rule LATCH HI V(CLK)>.7"), "states and rules"),
    (lambda t: t.replace(".endmachine", ""), "without .endmachine"),
    (lambda t: t.replace("V(GRU1_Z1) * V(LH1_1)", "V(GRU1_Z1) * V(LH1_2)"), "not the GRU's update"),
    (lambda t: t.replace("V(L_ACT1_3)*", "V(NOWHERE)*", 1), "neither an input of the cell nor its latch"),
    (lambda t: t.replace("IF((state==1), V(HOUT1_2)", "IF((state==1), V(HOUT1_3)"), "copies HOUT1_3"),
])
def test_a_recurrent_file_it_cannot_read_names_the_cell_and_the_reason(tmp_path, edit, message):
    _, path = _reference_file("gru", tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ImportError_, match=message):
        import_network(path)


# --- buckbi's own feed-forward exports -----------------------------------------------------------------------------
OWN = {
    "seed": lambda: torch.nn.Sequential(torch.nn.Linear(19, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                                        torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.Sigmoid()),
    "every_activation": lambda: torch.nn.Sequential(
        torch.nn.Linear(19, 6), torch.nn.Tanh(), torch.nn.Linear(6, 6), torch.nn.LeakyReLU(0.07),
        torch.nn.Linear(6, 6), torch.nn.ELU(0.6), torch.nn.Linear(6, 6), torch.nn.SiLU(), torch.nn.Linear(6, 6),
        torch.nn.Softplus(beta=1.5, threshold=4.0), torch.nn.Linear(6, 6), torch.nn.Hardtanh(-0.4, 0.9),
        torch.nn.Linear(6, 6), torch.nn.Hardsigmoid(), torch.nn.Linear(6, 1)),
}


@pytest.mark.parametrize("structure", ["fast", "plain"])
@pytest.mark.parametrize("dialect", ["ltspice", "ngspice"])
@pytest.mark.parametrize("kind", sorted(OWN))
def test_buckbis_own_exports_import_as_the_model(kind, dialect, structure, tmp_path):
    from buckbi import export_model
    torch.manual_seed(2)
    model = OWN[kind]().double().eval()
    path = tmp_path / "own.sp"
    export_model(model, path, dialect=dialect, structure=structure)
    net = import_network(path)
    assert [type(m).__name__ for m in net] == [type(m).__name__ for m in model]
    for got, want in zip(net, model):
        for name, p in want.named_parameters():
            assert torch.equal(dict(got.named_parameters())[name], p)  # printed as repr: exact
        for attr in ("negative_slope", "alpha", "beta", "threshold", "min_val", "max_val"):
            assert getattr(got, attr, None) == getattr(want, attr, None)
    xs = torch.from_numpy(np.random.default_rng(3).normal(size=(64, 19)) * 2)
    with torch.no_grad():
        assert torch.equal(net(xs), model(xs))


@pytest.mark.ltspice
def test_buckbis_ltspice_export_imported_equals_the_file_in_ngspice(simulator, tmp_path):
    from buckbi import export_model
    torch.manual_seed(4)
    model = OWN["every_activation"]().double().eval()
    text = export_model(model, dialect="ltspice", structure="plain")
    (tmp_path / "own.sp").write_text(text)
    net = import_network(tmp_path / "own.sp")
    xs = np.random.default_rng(5).uniform(-1.0, 1.0, size=(16, 19))
    got = file_in_ngspice(text, xs, tmp_path)
    with torch.no_grad():
        want = net(torch.from_numpy(xs)).numpy().ravel()
    assert np.abs(got - want).max() <= 1e-9
