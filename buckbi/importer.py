"""Import another exporter's network (the reference's ``B``-source subcircuits, recurrent cells as LTspice
``.machine`` blocks: ``buckbi.import_cells``) as a PyTorch model.

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

from .import_cells import CellImportError, parse_machine
from .netlist_actor import SUBCKT, NetlistActor, NetlistActorError, _logical_lines

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_B = re.compile(r"^B\S*\s+(\S+)\s+0\s+V\s*=\s*(.+)$", re.IGNORECASE)
_TERM = re.compile(rf"V\((\w+)\)\*\(({_NUM})\)", re.IGNORECASE)
_BIAS = re.compile(rf"^\(?\s*(?:\+?\(({_NUM})\))?\s*\)?$")
_ACTS = [(re.compile(r"^\(?IF\(V\((\w+)\)>0,V\(\1\),0\)\)?$", re.IGNORECASE), nn.ReLU),
         (re.compile(r"^\(?1/\(1\+EXP\(-V\((\w+)\)\)\)\)?$", re.IGNORECASE), nn.Sigmoid),
         (re.compile(r"^\(?TANH\(V\((\w+)\)\)\)?$", re.IGNORECASE), nn.Tanh)]
_COPY = re.compile(r"^\(?V\((\w+)\)\)?$", re.IGNORECASE)
_MACHINE = re.compile(r"^\s*\.machine\b", re.IGNORECASE | re.MULTILINE)
_LOAD = re.compile(r"^R\S*\s+\S+\s+0\s+1k$", re.IGNORECASE)


class ImportError_(NetlistActorError):
    """A subcircuit file buckbi cannot turn into a PyTorch model (the line and the reason)."""


def _node_expr(line: str, path) -> tuple[str, str]:
    m = _B.match(line)
    if not m:
        raise ImportError_(f"{path}: not a behavioural voltage source 'Bname node 0 V=...': {line[:120]!r}")
    return m.group(1), re.sub(r"\s+", "", m.group(2))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise ImportError_(f"netlist {path} does not exist") from None
    except (UnicodeDecodeError, OSError) as err:
        raise ImportError_(f"netlist {path} cannot be read as UTF-8 text ({err}); LTspice may have saved it as "
                           "UTF-16: re-save it as UTF-8") from None


def _subckt(lines: list[str], path: Path) -> int:
    """The index of the ``.subckt`` line: ActorSubckt's, or the file's only subcircuit."""
    heads = [i for i, ln in enumerate(lines) if ln.lower().startswith(".subckt")]
    named = [i for i in heads if len(lines[i].split()) > 1 and lines[i].split()[1].lower() == SUBCKT.lower()]
    if named or len(heads) == 1:
        return (named or heads)[0]
    have = ", ".join(lines[i].split()[1] for i in heads if len(lines[i].split()) > 1) or "none"
    raise ImportError_(f"{path}: no '.subckt {SUBCKT}' and not exactly one subcircuit (found: {have})")


def import_network(path: str | Path) -> nn.Sequential:
    """The network of ``.subckt ActorSubckt`` (or the file's only subcircuit) in ``path`` as an ``nn.Sequential``
    (eval, float64): feed-forward B sources, and the reference exporter's recurrent ``.machine`` cells."""
    path = Path(path)
    text = _read(path)
    if not _MACHINE.search(text):
        try:
            NetlistActor.load(path)  # a feed-forward file: the checks of --netlist (19 + 1 ports, ...)
        except NetlistActorError as err:
            raise ImportError_(str(err)) from None
    lines = _logical_lines(text)
    start = _subckt(lines, path)
    ports = lines[start].split()[2:]
    recurrent = any(p.lower() == "clk" for p in ports)
    if recurrent:
        k = [p.lower() for p in ports].index("clk")
        inputs, outputs = ports[:k], ports[k + 1:]
    else:
        inputs, outputs = ports[:-1], ports[-1:]
    if len(outputs) != 1 or not inputs:
        raise ImportError_(f"{path}: ports {' '.join(ports)}: expected inputs, {'CLK, ' if recurrent else ''}and one "
                           "output")
    output = outputs[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lower().startswith(".ends")), None)
    if end is None:
        raise ImportError_(f"{path}: .subckt {lines[start].split()[1]} has no .ends (a cut file?)")
    items: list[tuple] = []  # in file order: ("b", node, parsed) and ("cell", lines)
    body = lines[start + 1:end]
    i = 0
    while i < len(body):
        ln = body[i]
        if ln.lower().startswith(".machine"):
            stop = next((j for j in range(i + 1, len(body)) if body[j].lower().startswith(".endmachine")), None)
            if stop is None:
                raise ImportError_(f"{path}: a .machine without .endmachine (a cut file?)")
            items.append(("cell", body[i + 1:stop]))
            i = stop + 1
            continue
        if _LOAD.match(ln):  # the exporter's 1k load on each node a .machine drives
            i += 1
            continue
        if ln.startswith("."):
            raise ImportError_(f"{path}: {ln[:80]!r}: only B sources and the exporter's .machine cells are imported")
        node, expr = _node_expr(ln, path)
        items.append(("b", node.lower(), _parse(expr, ln, path)))
        i += 1
    return _layers(items, [n.lower() for n in inputs], output.lower(), path)


def _layers(items: list[tuple], current: list[str], output: str, path: Path) -> nn.Sequential:
    """Group consecutive B sources into layers (a Linear, or one activation per unit), a .machine into its cell."""
    layers: list[nn.Module] = []
    width = len(current)
    pending = {it[1]: it[2] for it in items if it[0] == "b"}
    if output not in pending:
        raise ImportError_(f"{path}: the output {output} is never driven (a cut or incomplete file?)")
    i, cells = 0, 0
    while i < len(items):
        if items[i][0] == "cell":
            cells += 1
            try:
                cell, outs = parse_machine(items[i][1], current, cells)
            except CellImportError as err:
                raise ImportError_(f"{path}: recurrent cell {cells}: {err}") from None
            layers.append(cell)
            current, width = [n.lower() for n in outs], len(outs)
            i += 1
            continue
        kind = items[i][2][0]
        group = [items[i][1]]
        while (i + len(group) < len(items) and items[i + len(group)][0] == "b"
               and items[i + len(group)][2][0] == kind and kind != "copy"):
            group.append(items[i + len(group)][1])
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
    if not layers or not isinstance(layers[0], (nn.Linear, nn.RNNCell, nn.GRUCell, nn.LSTMCell)):
        raise ImportError_(f"{path}: no linear layer or recurrent cell found before the first activation")
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
