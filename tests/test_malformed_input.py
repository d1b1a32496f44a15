"""Malformed input by the hundreds (hypothesis): test plans, sweep grids and checkpoints either load or fail with
their own error type and a message; never another exception, and nothing is written."""
from __future__ import annotations

import tomllib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buckbi.nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from buckbi.sweep.grid import GridError, grid_points, parse_grid
from buckbi.testplan import PlanError, load_plan, parse_plan
from buckbi.testplan.plan import default_plan_path

MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
VALID = default_plan_path().read_text()
KEYS = ["vin", "vref", "ro", "Lo", "name", "scenario", "corners", "limits", "step_pct", "soft_start_ms", "t_step_ms",
        "duration_ms", "overshoot_pct", "min_phase_margin_deg", "band_pct", "all", "startup", "refstep", "fra", "x"]
values = st.recursive(st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=True)
                      | st.sampled_from(KEYS) | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                                     max_size=5), max_leaves=20)


@MANY
@given(data=st.dictionaries(st.sampled_from(["plan", "corners", "tests", "other"]), values, max_size=4))
def test_random_plan_structures_fail_as_plan_errors(data):
    try:
        parse_plan(data)
    except PlanError as err:
        assert str(err)


@MANY
@given(cut=st.integers(0, len(VALID)), junk=st.text(max_size=12), at=st.integers(0, len(VALID)))
def test_damaged_default_plan_text_fails_as_plan_errors(tmp_path, cut, junk, at):
    text = (VALID[:at] + junk + VALID[at:])[:max(cut, 1)]
    path = tmp_path / "damaged.toml"
    path.write_text(text)
    try:
        plan = load_plan(path)
    except PlanError as err:
        assert str(err) and str(path) in str(err)
    else:
        assert plan.tests and plan.corners


@MANY
@given(changes=st.dictionaries(st.sampled_from(["vin", "vref", "ro", "Lo"]),
                               st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 400), min_size=1))
def test_any_corner_values_are_checked(changes):
    data = tomllib.loads(VALID)
    first = next(iter(data["corners"]))
    data["corners"][first] |= changes
    try:
        parse_plan(data)
    except PlanError as err:
        assert f"[corners.{first}]" in str(err)


@MANY
@given(spec=st.text(alphabet="vinrefoL=:,.0123456789e- ", max_size=40))
def test_random_grids_fail_as_grid_errors(spec):
    try:
        grid_points(parse_grid(spec), 64)
    except GridError as err:
        assert str(err)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ck") / "actor.pth"
    model = torch.nn.Sequential(torch.nn.Linear(19, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    save_checkpoint(path, model)
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_checkpoints_fail_as_checkpoint_errors(tmp_path, checkpoint_bytes, data):
    raw = bytearray(checkpoint_bytes)
    how = data.draw(st.sampled_from(["cut", "flip", "junk"]))
    if how == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    else:
        raw = bytearray(data.draw(st.binary(max_size=200)))
    path = tmp_path / "damaged.pth"
    path.write_bytes(bytes(raw))
    try:
        model, _ = load_checkpoint(path)
    except CheckpointError as err:
        assert str(path) in str(err) or path.name in str(err)
    else:  # a flip inside a float's bytes can leave a loadable file: it must still be a usable model
        assert model(torch.zeros(1, 19, dtype=next(model.parameters()).dtype)).shape == (1, 1)


def _reference_gru_text() -> str:
    """A recurrent file as the reference's exporter writes it (pytorch2ltspice, a test dependency)."""
    p2l = pytest.importorskip("pytorch2ltspice", reason="the reference's exporter: ./buckbi.sh test installs it")
    import tempfile
    from pathlib import Path
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.GRUCell(3, 2),
                                torch.nn.Linear(2, 1), torch.nn.Tanh()).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gru.sp"
        p2l.export_model_to_ltspice(model, filename=str(path), subckt_name="ActorSubckt", verbose=False)
        return path.read_text()


def _own_export_text() -> str:
    """A small feed-forward network as buckbi's fast structure writes it (G, I and 1 Ohm R per unit)."""
    from buckbi.export import export_model
    torch.manual_seed(1)
    return export_model(torch.nn.Sequential(torch.nn.Linear(19, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)))


NUMBERS = ["nan", "inf", "-inf", "1e999", "1e308", "0", "--1", "1e", "(", ")", ",", "V(", "state==3"]


@MANY
@given(data=st.data())
def test_damaged_netlists_fail_as_import_errors(tmp_path, data):
    from buckbi.importers.subckt import ImportError_, import_network
    text = data.draw(st.sampled_from([_reference_gru_text(), _own_export_text()]))
    how = data.draw(st.sampled_from(["cut", "junk", "number", "line", "bytes"]))
    if how == "cut":  # a file cut anywhere (a torn copy)
        text = text[:data.draw(st.integers(0, len(text)))]
    elif how == "junk":
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(st.text(max_size=12)) + text[at:]
    elif how == "number":  # a weight replaced by NaN, inf, a huge or a broken number
        import re
        spans = [m.span() for m in re.finditer(r"-?\d+\.\d+", text)]
        a, b = data.draw(st.sampled_from(spans))
        text = text[:a] + data.draw(st.sampled_from(NUMBERS)) + text[b:]
    elif how == "line":  # a line dropped or repeated
        lines = text.splitlines()
        k = data.draw(st.integers(0, len(lines) - 1))
        lines[k:k + 1] = [] if data.draw(st.booleans()) else [lines[k], lines[k]]
        text = "\n".join(lines)
    path = tmp_path / "damaged.sp"
    if how == "bytes":  # not UTF-8
        at = data.draw(st.integers(0, len(text)))
        path.write_bytes(text[:at].encode() + b"\xff\xfe" + text[at:].encode())
    else:
        path.write_text(text)
    before = path.read_bytes()
    try:
        net = import_network(path)
    except ImportError_ as err:
        assert str(path) in str(err)
    else:
        assert len(net) >= 1
        for p in net.parameters():
            assert torch.isfinite(p).all()
    assert path.read_bytes() == before
