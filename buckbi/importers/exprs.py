"""The B-source expressions an imported network's units are written in: the reference exporter's and buckbi's own.

A unit is linear (sum of weight * V(node) plus a bias), an activation of one node, or a copy of one node. The
reference (kosokno/pytorch2ltspice) writes ``(V(A)*(w)+...+(b))``, ``(IF(V(x)>0,V(x),0))``, ``(1/(1+EXP(-V(x))))``,
``(TANH(V(x)))``; buckbi's ``plain`` structure ``b +w*V(A) -w*V(B) ...`` and each activation as the activation
table renders it (``buckbi.nn.activations``, both dialects' conditionals), whose parameters are read back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from torch import nn

from ..nn.activations import ACTIVATIONS

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_REF_TERM = re.compile(rf"V\((\w+)\)\*\(({NUM})\)", re.IGNORECASE)
_OWN_TERM = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\*V\((\w+)\)", re.IGNORECASE)
_REF_ACTS = [(re.compile(r"^\(?IF\(V\((\w+)\)>0,V\(\1\),0\)\)?$", re.IGNORECASE), "relu", {}),
             (re.compile(r"^\(?1/\(1\+EXP\(-V\((\w+)\)\)\)\)?$", re.IGNORECASE), "sigmoid", {}),
             (re.compile(r"^\(?TANH\(V\((\w+)\)\)\)?$", re.IGNORECASE), "tanh", {})]
_COPY = re.compile(r"^\(?V\((\w+)\)\)?$", re.IGNORECASE)
# Rebuilding a PyTorch module from an activation kind and its parameters (the table's names).
MODULE_OF = {"relu": lambda p: nn.ReLU(), "sigmoid": lambda p: nn.Sigmoid(), "tanh": lambda p: nn.Tanh(),
             "silu": lambda p: nn.SiLU(), "hardtanh": lambda p: nn.Hardtanh(p["lo"], p["hi"]),
             "hardsigmoid": lambda p: nn.Hardsigmoid(), "leaky_relu": lambda p: nn.LeakyReLU(p["slope"]),
             "elu": lambda p: nn.ELU(p["alpha"]),
             "softplus": lambda p: nn.Softplus(p["beta"], p["threshold"])}
assert set(MODULE_OF) == set(ACTIVATIONS)


class ExprError(ValueError):
    """An expression that is none of the unit forms (the message says which forms are read)."""


@dataclass(frozen=True)
class Unit:
    """One node's unit: kind "linear" (terms, bias), "act" (activation kind, params, source) or "copy" (source)."""

    kind: str
    terms: tuple[tuple[str, float], ...] = ()
    bias: float = 0.0
    act: str = ""
    params: tuple[tuple[str, float], ...] = ()
    source: str = ""

    def module(self) -> nn.Module:
        return MODULE_OF[self.act](dict(self.params))


def _select_ltspice(c: str, a: str, b: str) -> str:
    return f"if({c},{a},{b})"


def _select_ngspice(c: str, a: str, b: str) -> str:
    return f"(({c}) ? ({a}) : ({b}))"


@lru_cache(maxsize=1)
def _own_activations() -> list[tuple[re.Pattern, str, tuple[str, ...]]]:
    """A pattern per activation kind and dialect, from the table's own SPICE text (parameters as groups)."""
    out = []
    for kind in ACTIVATIONS.values():
        sentinels = {name: 91234.5 + 1000 * k for k, name in enumerate(kind.params)}
        for select in (_select_ltspice, _select_ngspice):
            text = re.sub(r"\s+", "", kind.spice("V(@X@)", sentinels, select))
            pattern = re.escape(text)
            pattern = pattern.replace(re.escape("V(@X@)"), r"V\((?P<x>\w+)\)", 1).replace(re.escape("V(@X@)"),
                                                                                      r"V\((?P=x)\)")
            for k, (name, value) in enumerate(sentinels.items()):
                lit = re.escape(repr(value))
                pattern = pattern.replace(lit, rf"(?P<p{k}>{NUM})", 1).replace(lit, rf"(?P=p{k})")
            out.append((re.compile(f"^{pattern}$", re.IGNORECASE), kind.name, kind.params))
    return out


def parse_unit(expr: str) -> Unit:
    """The unit an expression (whitespace ignored) computes; ExprError when it is none of the forms."""
    e = re.sub(r"\s+", "", expr)
    for pattern, act, params in _REF_ACTS:
        m = pattern.match(e)
        if m:
            return Unit("act", act=act, source=m.group(1).lower())
    for pattern, act, names in _own_activations():
        m = pattern.match(e)
        if m:
            values = tuple((n, float(m.group(f"p{k}"))) for k, n in enumerate(names))
            return Unit("act", act=act, params=values, source=m.group("x").lower())
    m = _COPY.match(e)
    if m:
        return Unit("copy", source=m.group(1).lower())
    for term, swap in ((_REF_TERM, False), (_OWN_TERM, True)):
        found = term.findall(e)
        if not found:
            continue
        terms = tuple((b.lower(), float(a)) if swap else (a.lower(), float(b)) for a, b in found)
        rest = term.sub("", e)
        # what is left is the bias: the reference's "(++(b))", buckbi's "b" (first; the signs belong to the terms)
        m = re.fullmatch(rf"\(*\+*(?:\(({NUM})\))?\)*" if not swap else rf"({NUM})?", rest)
        if not m:
            why = "more than one constant" if len(re.findall(NUM, rest)) > 1 else f"left over: {rest[:60]!r}"
            raise ExprError(f"a linear unit is weight * V(node) terms plus one bias; {why}")
        return Unit("linear", terms=terms, bias=float(m.group(1)) if m.group(1) else 0.0)
    raise ExprError("not a linear unit, an activation of one node (the reference's ReLU/sigmoid/tanh or one of "
                    f"buckbi's: {', '.join(ACTIVATIONS)}), or a copy")
