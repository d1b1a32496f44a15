"""The one table of activations: name, parameters, PyTorch modules, SPICE expression, code-model and kernel id.

Read by the lowering (``buckbi.export.graph``), the subcircuit export (``export.netlist``), the XSPICE element's
program (``export.xspice_text``; its C enum in ``xspice/buckbi_mlp/cfunc.mod`` is checked against ``id`` by a
test), the fast kernel (``pwl.kernel``) and checkpoints (``checkpoint``). A new activation is a row here plus its
formula in the two compiled evaluators (cfunc.mod, pwl/kernel.py), which the equivalence tests then hold to
PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn


def spice_number(x: float) -> str:
    """Shortest text that parses back to exactly this double (float32 values stay exact)."""
    x = float(x)
    return "0" if x == 0.0 else repr(x)


Select = Callable[[str, str, str], str]  # the dialect's conditional: select(cond, a, b)


def _softplus(x: str, p: dict, select: Select) -> str:
    b, th = spice_number(p["beta"]), spice_number(p["threshold"])
    return select(f"{b}*{x}>{th}", x, f"(max({b}*{x},0)+log(1+exp(-abs({b}*{x}))))/{b}")


@dataclass(frozen=True)
class ActivationKind:
    """An element-wise nonlinearity as every evaluator knows it."""

    name: str
    id: int  # one numbering: the code model's enum value and the fast kernel's activation id (0: none)
    params: tuple[str, ...]  # float parameters, in the order the code model and the kernel take them
    spice: Callable[[str, dict, Select], str]  # B-source expression of x (numerically stable forms)


_N = spice_number
ACTIVATIONS: dict[str, ActivationKind] = {a.name: a for a in (
    ActivationKind("relu", 1, (), lambda x, p, s: f"max({x},0)"),
    ActivationKind("sigmoid", 2, (), lambda x, p, s: f"0.5+0.5*tanh(0.5*{x})"),  # bounded: no exp overflow
    ActivationKind("tanh", 3, (), lambda x, p, s: f"tanh({x})"),
    ActivationKind("silu", 4, (), lambda x, p, s: f"{x}*(0.5+0.5*tanh(0.5*{x}))"),
    ActivationKind("hardtanh", 5, ("lo", "hi"), lambda x, p, s: f"min(max({x},{_N(p['lo'])}),{_N(p['hi'])})"),
    ActivationKind("hardsigmoid", 6, (), lambda x, p, s: f"min(max({x}+3,0),6)/6"),  # relu6(x + 3) / 6
    ActivationKind("leaky_relu", 7, ("slope",), lambda x, p, s: f"max({x},0)+{_N(p['slope'])}*min({x},0)"),
    ActivationKind("elu", 8, ("alpha",), lambda x, p, s: f"max({x},0)+{_N(p['alpha'])}*(exp(min({x},0))-1)"),
    ActivationKind("softplus", 9, ("beta", "threshold"), _softplus),
)}


@dataclass(frozen=True)
class ActivationModule:
    """A PyTorch module that lowers to an activation kind."""

    module: type[nn.Module]
    kind: str
    params: Callable[[nn.Module], dict]  # the kind's parameters from the module
    ctor: Callable[[nn.Module], dict]  # constructor arguments a checkpoint records to rebuild it


def _none(m: nn.Module) -> dict:
    return {}


MODULES: tuple[ActivationModule, ...] = (
    ActivationModule(nn.ReLU, "relu", _none, _none),
    ActivationModule(nn.Sigmoid, "sigmoid", _none, _none),
    ActivationModule(nn.Tanh, "tanh", _none, _none),
    ActivationModule(nn.SiLU, "silu", _none, _none),
    ActivationModule(nn.ReLU6, "hardtanh", lambda m: {"lo": 0.0, "hi": 6.0}, _none),
    ActivationModule(nn.Hardtanh, "hardtanh", lambda m: {"lo": float(m.min_val), "hi": float(m.max_val)},
                     lambda m: {"min_val": m.min_val, "max_val": m.max_val}),
    ActivationModule(nn.Hardsigmoid, "hardsigmoid", _none, _none),
    ActivationModule(nn.LeakyReLU, "leaky_relu", lambda m: {"slope": float(m.negative_slope)},
                     lambda m: {"negative_slope": m.negative_slope}),
    ActivationModule(nn.ELU, "elu", lambda m: {"alpha": float(m.alpha)}, lambda m: {"alpha": m.alpha}),
    ActivationModule(nn.Softplus, "softplus", lambda m: {"beta": float(m.beta), "threshold": float(m.threshold)},
                     lambda m: {"beta": m.beta, "threshold": m.threshold}),
)
assert all(m.kind in ACTIVATIONS for m in MODULES)


def module_entry(m: nn.Module) -> ActivationModule | None:
    """The table's row for this exact module type (a subclass may change forward: not matched)."""
    return next((e for e in MODULES if type(m) is e.module), None)
