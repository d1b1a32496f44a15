"""Import another exporter's feed-forward network (the reference's ``B``-source subcircuits) as a PyTorch model.

The reference exporter (kosokno/pytorch2ltspice) writes each linear layer as one ``B`` source per unit,
``V=(V(in1)*(w1)+...+(bias))``, and each activation as one ``B`` source per unit: ReLU ``IF(V(x)>0,V(x),0)``,
sigmoid ``1/(1+EXP(-V(x)))``, ``TANH(V(x))``. The PyTorch model rebuilt from it computes what the file computes
(its weights as printed, in float64); then it runs on the fast simulator and as buckbi's XSPICE element.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .netlist_actor import NetlistActor, NetlistActorError, _logical_lines

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_B = re.compile(r"^B\S*\s+(\S+)\s+0\s+V\s*=\s*(.+)$", re.IGNORECASE)
_TERM = re.compile(rf"V\((\w+)\)\*\(({_NUM})\)", re.IGNORECASE)
_BIAS = re.compile(rf"^\(?\s*(?:\+?\(({_NUM})\))?\s*\)?$")
_ACTS = [(re.compile(r"^\(?IF\(V\((\w+)\)>0,V\(\1\),0\)\)?$", re.IGNORECASE), nn.ReLU),
         (re.compile(r"^\(?1/\(1\+EXP\(-V\((\w+)\)\)\)\)?$", re.IGNORECASE), nn.Sigmoid),
         (re.compile(r"^\(?TANH\(V\((\w+)\)\)\)?$", re.IGNORECASE), nn.Tanh)]
_COPY = re.compile(r"^\(?V\((\w+)\)\)?$", re.IGNORECASE)


class ImportError_(NetlistActorError):
    """A subcircuit file buckbi cannot turn into a PyTorch model (the line and the reason)."""


def _node_expr(line: str, path) -> tuple[str, str]:
    m = _B.match(line)
    if not m:
        raise ImportError_(f"{path}: not a behavioural voltage source 'Bname node 0 V=...': {line[:120]!r}")
    return m.group(1), re.sub(r"\s+", "", m.group(2))


def import_network(path: str | Path) -> nn.Sequential:
    """The feed-forward network of ``.subckt ActorSubckt`` in ``path`` as an ``nn.Sequential`` (eval, float64)."""
    actor = NetlistActor.load(path)  # the checks of --netlist: the subcircuit, 19 + 1 ports, UTF-8, no .machine
    lines = _logical_lines(actor.text)
    start = next(i for i, ln in enumerate(lines) if ln.lower().startswith(".subckt"))
    ports = lines[start].split()[2:]
    inputs, output = ports[:-1], ports[-1]
    layers: list[nn.Module] = []
    width = len(inputs)
    current: list[str] = [n.lower() for n in inputs]  # the nodes the next layer reads, in order
    pending: dict[str, tuple] = {}
    body = [ln for ln in lines[start + 1:] if not ln.lower().startswith(".ends")]
    for ln in body:
        if ln.startswith("."):
            raise ImportError_(f"{path}: {ln[:80]!r}: only B sources are imported (no models or other elements)")
        node, expr = _node_expr(ln, path)
        pending[node.lower()] = _parse(expr, ln, path)
    nodes = list(pending)
    if output.lower() not in pending:
        raise ImportError_(f"{path}: the output {output} is never driven (a cut or incomplete file?)")
    i = 0
    while i < len(nodes):
        kind = pending[nodes[i]][0]
        group = [nodes[i]]
        while i + len(group) < len(nodes) and pending[nodes[i + len(group)]][0] == kind and kind != "copy":
            group.append(nodes[i + len(group)])
        if kind == "linear":
            w = np.zeros((len(group), width))
            b = np.zeros(len(group))
            pos = {n: k for k, n in enumerate(current)}
            for r, n in enumerate(group):
                _, terms, bias = pending[n]
                for src, val in terms:
                    if src not in pos:
                        raise ImportError_(f"{path}: node {n} reads {src}, which is not an output of the layer before")
                    w[r, pos[src]] += val
                b[r] = bias
            lin = nn.Linear(width, len(group)).double()
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            width, current = len(group), group
        elif kind == "act":
            cls = pending[group[0]][1]
            srcs = [pending[n][2] for n in group]
            if any(pending[n][1] is not cls for n in group) or srcs != current:
                raise ImportError_(f"{path}: the activation nodes {group[0]}.. do not map the previous layer one to one")
            layers.append(cls())
            current = group
        else:  # copy: the output
            src = pending[group[0]][1]
            if group[0] != output.lower() or src != current[0] or len(current) != 1:
                raise ImportError_(f"{path}: node {group[0]} copies {src}: only the last node may be copied to "
                                   f"the output {output}")
        i += len(group)
    if not layers or not isinstance(layers[0], nn.Linear):
        raise ImportError_(f"{path}: no linear layer found")
    if current != [output.lower()] and width != 1:
        raise ImportError_(f"{path}: the last layer has {width} units; the output {output} takes one")
    return nn.Sequential(*layers).double().eval()


def _parse(expr: str, line: str, path) -> tuple:
    for pattern, cls in _ACTS:
        m = pattern.match(expr)
        if m:
            return ("act", cls, m.group(1).lower())
    m = _COPY.match(expr)
    if m:
        return ("copy", m.group(1).lower())
    terms = [(s.lower(), float(v)) for s, v in _TERM.findall(expr)]
    rest = _TERM.sub("", expr).replace("+", " ").replace("(", " ").replace(")", " ").split()
    if terms:
        try:
            consts = [float(r) for r in rest]
        except ValueError:
            raise ImportError_(f"{path}: cannot read {line[:120]!r}: a linear unit is V(node)*(weight) terms plus "
                               "one (bias)") from None
        if len(consts) > 1 or not all(np.isfinite(consts)) or not all(np.isfinite([v for _, v in terms])):
            raise ImportError_(f"{path}: cannot read {line[:120]!r}: more than one constant, or not finite")
        return ("linear", terms, consts[0] if consts else 0.0)
    raise ImportError_(f"{path}: cannot read {line[:120]!r}: not a linear unit, a ReLU/sigmoid/tanh of one node, or a copy")
