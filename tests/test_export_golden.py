"""Golden files: the exported text of fixed small nets, per dialect (rewrite with --buckbi-update-golden)."""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import torch
from torch import nn

from buckbi import export_model

GOLDEN = Path(__file__).parent / "golden" / "netlists"


def _fill(model: nn.Module) -> nn.Module:
    """Deterministic weights that do not depend on torch's random generator."""
    with torch.no_grad():
        for k, (name, p) in enumerate(sorted(model.state_dict().items())):
            if name.endswith("num_batches_tracked"):
                continue
            n = p.numel()
            vals = torch.arange(n, dtype=torch.float64).mul(0.37 + k).sin().mul(0.8).float()
            if name.endswith("running_var"):
                vals = vals.abs() + 0.5
            p.copy_(vals.reshape(p.shape))
    return model.eval()


NETS = {
    "mlp": lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2),
                                 nn.Softplus(beta=2.0, threshold=5.0), nn.Linear(2, 1), nn.Sigmoid()),
    "gru": lambda: nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.GRUCell(2, 2)),
}


CASES = [(n, d, s) for n in sorted(NETS) for d in ("ngspice", "ltspice") for s in ("fast", "plain")]
CASES.append(("mlp", "ngspice", "xspice"))  # the code model element: feed-forward, ngspice only


@pytest.mark.parametrize(("net", "dialect", "structure"), CASES)
def test_netlist_text_matches_golden(net, dialect, structure, update_golden):
    # The xspice file names the code model it loads; the golden one a fixed path.
    text = export_model(_fill(NETS[net]()), dialect=dialect, structure=structure, codemodel="/opt/buckbi/buckbi.cm")
    path = GOLDEN / f"{net}_{dialect}_{structure}.sp"
    if update_golden or not path.exists():
        if not update_golden:
            pytest.fail(f"golden file {path} is missing; create it with --buckbi-update-golden")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    expected = path.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "exported"))
    assert text == expected, f"exported netlist drifted from the golden file:\n{diff}"


def test_dialects_differ_only_where_they_must():
    model = _fill(NETS["mlp"]())
    ng, lt = (export_model(model, dialect=d) for d in ("ngspice", "ltspice"))
    changed = [(a, b) for a, b in zip(ng.splitlines(), lt.splitlines()) if a != b]
    assert all("dialect" in a or "?" in a for a, _ in changed)
    assert all("if(" in b or "dialect" in b for _, b in changed)
    assert "?" not in lt  # no ngspice ternary in the LTspice file
