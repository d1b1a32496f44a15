"""One table of activations: every consumer (lowering, SPICE text, code model, fast kernel, checkpoints) agrees
with it and with PyTorch (no simulator; the SPICE side is held to PyTorch in test_export_spice/test_xspice)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from buckbi.nn.checkpoint import load_checkpoint, save_checkpoint
from buckbi.export.graph import SUPPORTED, lower
from buckbi.nn.activations import ACTIVATIONS, MODULES
from buckbi.pwl import network as kernel  # the compiled actor of the fast kernel
from buckbi.pwl.simulate import compile_actor

CFUNC = Path(__file__).resolve().parents[1] / "buckbi" / "xspice" / "buckbi_mlp" / "cfunc.mod"
EXAMPLES = [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.SiLU(), nn.ReLU6(), nn.Hardtanh(-0.7, 1.3), nn.Hardsigmoid(),
            nn.LeakyReLU(0.03), nn.ELU(0.6), nn.Softplus(beta=2.0, threshold=5.0)]
XS = np.linspace(-8, 8, 161)


def test_the_code_models_enum_is_the_tables_numbering():
    enum = re.search(r"enum\s*\{\s*RELU\s*=\s*1\s*,([^}]*)\}", CFUNC.read_text())
    names = ["RELU"] + [n.strip() for n in enum.group(1).split(",")]
    assert {n.lower(): k for k, n in enumerate(names, 1)} == {a: k.id for a, k in ACTIVATIONS.items()}


def test_the_kernel_takes_the_tables_ids():
    assert kernel.ACT_NONE == 0
    for name, attr in [("relu", "ACT_RELU"), ("sigmoid", "ACT_SIGMOID"), ("tanh", "ACT_TANH"), ("silu", "ACT_SILU"),
                       ("hardtanh", "ACT_HARDTANH"), ("hardsigmoid", "ACT_HARDSIGMOID"),
                       ("leaky_relu", "ACT_LEAKY"), ("elu", "ACT_ELU"), ("softplus", "ACT_SOFTPLUS")]:
        assert getattr(kernel, attr) == ACTIVATIONS[name].id


def test_every_table_module_is_example_tested_and_supported():
    assert {type(m) for m in EXAMPLES} == {e.module for e in MODULES}
    assert all(e.module.__name__ in SUPPORTED for e in MODULES)


@pytest.mark.parametrize("act", EXAMPLES, ids=lambda m: type(m).__name__)
def test_the_compiled_kernel_equals_pytorch_for_every_activation(act):
    net = nn.Sequential(nn.Linear(1, 1), act).double().eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(0.0)
        want = net(torch.from_numpy(XS[:, None])).numpy().ravel()
    got = kernel.mlp_rows(np.ascontiguousarray(XS[:, None]), *compile_actor_any(net))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def compile_actor_any(net):
    """compile_actor for a 1-input net (the gyms' 19 inputs are a check of compile_actor, not of the table)."""
    ops, _, _ = lower(net, 1)
    weights = np.concatenate([op.weight.ravel() for op in ops[:1]])
    biases = np.concatenate([op.bias for op in ops[:1]])
    kind = ACTIVATIONS[ops[1].kind]
    act_p = np.zeros((1, 2))
    act_p[0, :len(kind.params)] = [ops[1].params[n] for n in kind.params]
    return weights, biases, np.array([[1, 1]]), np.array([kind.id]), act_p


def test_compile_actor_uses_the_tables_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(19, 4), nn.Softplus(beta=2.0, threshold=5.0), nn.Linear(4, 1), nn.Hardtanh(-0.5, 0.9))
    _, _, _, acts, act_p = compile_actor(net)
    assert acts.tolist() == [ACTIVATIONS["softplus"].id, ACTIVATIONS["hardtanh"].id]
    assert act_p.tolist() == [[2.0, 5.0], [-0.5, 0.9]]


@pytest.mark.parametrize("act", EXAMPLES, ids=lambda m: type(m).__name__)
def test_checkpoints_rebuild_every_activation_with_its_arguments(act, tmp_path):
    net = nn.Sequential(nn.Linear(3, 2), act)
    save_checkpoint(tmp_path / "a.pth", net)
    back, _ = load_checkpoint(tmp_path / "a.pth")
    assert type(back[1]) is type(act)
    assert lower(back, 3)[0][1] == lower(net, 3)[0][1]  # same kind and parameters


def test_spice_text_comes_from_the_table():
    from buckbi.export import export_model
    net = nn.Sequential(nn.Linear(2, 1), nn.LeakyReLU(0.25))
    text = export_model(net, structure="plain")
    assert "BL2_1 L2_1 0 V=max(V(L1_1),0)+0.25*min(V(L1_1),0)\n" in text  # written out by hand: the expected text
    # and it computes leaky_relu: evaluated as a Python expression at both signs
    expr = text.split("BL2_1 L2_1 0 V=")[1].splitlines()[0]
    for x in (-2.0, 3.0):
        assert eval(expr.replace("V(L1_1)", repr(x)), {"max": max, "min": min}) == nn.LeakyReLU(0.25)(
            torch.tensor(x)).item()
