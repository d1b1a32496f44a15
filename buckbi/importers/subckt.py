"""Import another exporter's network as a PyTorch model: the reference's ``B``-source subcircuits (recurrent cells
as LTspice ``.machine`` blocks: ``buckbi.importers.cells``) and buckbi's own feed-forward exports (``fast``: each linear
unit a 1 Ohm resistor fed by G and I sources; ``plain``: B sources); the unit forms are in ``buckbi.importers.exprs``.

The PyTorch model rebuilt from a file computes what the file computes (its weights as printed, in float64); a
feed-forward one then runs on the fast simulator and as buckbi's XSPICE element.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .cells import CellImportError, parse_machine
from .exprs import NUM, ExprError, Unit, parse_unit
from ..nn.netlist_actor import SUBCKT, NetlistActor, NetlistActorError, _logical_lines

_B = re.compile(r"^B\S*\s+(\S+)\s+0\s+V\s*=\s*(.+)$", re.IGNORECASE)
_G = re.compile(rf"^G\S*\s+0\s+(\S+)\s+(\S+)\s+0\s+({NUM})$", re.IGNORECASE)  # buckbi fast: w * V(in) into node
_I = re.compile(rf"^I\S*\s+0\s+(\S+)\s+({NUM})$", re.IGNORECASE)  # buckbi fast: the bias into node
_R1 = re.compile(r"^R\S*\s+(\S+)\s+0\s+1$", re.IGNORECASE)  # buckbi fast: the unit's 1 Ohm
_E = re.compile(r"^E\S*\s+(\S+)\s+0\s+(\S+)\s+0\s+1$", re.IGNORECASE)  # buckbi: the output's buffer
_MACHINE = re.compile(r"^\s*\.machine\b", re.IGNORECASE | re.MULTILINE)
_LOAD = re.compile(r"^R\S*\s+\S+\s+0\s+1k$", re.IGNORECASE)  # the reference's 1k on each node a .machine drives
_CELLS = (nn.RNNCell, nn.GRUCell, nn.LSTMCell)


class ImportError_(NetlistActorError):
    """A subcircuit file buckbi cannot turn into a PyTorch model (the line and the reason)."""


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
    (eval, float64)."""
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
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lower().startswith(".ends")), None)
    if end is None:
        raise ImportError_(f"{path}: .subckt {lines[start].split()[1]} has no .ends (a cut file?)")
    items = _units(lines[start + 1:end], path)
    return _layers(items, [n.lower() for n in inputs], outputs[0].lower(), path)


def _units(body: list[str], path: Path) -> list[tuple]:
    """The file's units in order: ("unit", node, Unit) and ("cell", .machine lines)."""
    items: list[tuple] = []
    fast: dict[str, dict] = {}  # buckbi's fast structure: a node's G terms and I bias, gathered from several lines
    i = 0
    while i < len(body):
        ln = body[i]
        i += 1
        low = ln.lower()
        if low.startswith(".machine"):
            stop = next((j for j in range(i, len(body)) if body[j].lower().startswith(".endmachine")), None)
            if stop is None:
                raise ImportError_(f"{path}: a .machine without .endmachine (a cut file?)")
            items.append(("cell", body[i:stop]))
            i = stop + 1
        elif _LOAD.match(ln):
            continue
        elif m := _R1.match(ln):
            node = m.group(1).lower()
            fast[node] = {"terms": [], "bias": 0.0}
            items.append(("unit", node, None))
        elif m := _G.match(ln):
            _fast_unit(fast, m.group(1), ln, path)["terms"].append((m.group(2).lower(), _finite(m.group(3), ln, path)))
        elif m := _I.match(ln):
            _fast_unit(fast, m.group(1), ln, path)["bias"] += _finite(m.group(2), ln, path)
        elif m := _E.match(ln):
            items.append(("unit", m.group(1).lower(), Unit("copy", source=m.group(2).lower())))
        elif m := _B.match(ln):
            try:
                unit = parse_unit(m.group(2))
            except ExprError as err:
                raise ImportError_(f"{path}: cannot read {ln[:120]!r}: {err}") from None
            if unit.kind == "linear" and not all(np.isfinite([b for _, b in unit.terms] + [unit.bias])):
                raise ImportError_(f"{path}: cannot read {ln[:120]!r}: a weight or bias is not finite")
            items.append(("unit", m.group(1).lower(), unit))
        else:
            raise ImportError_(f"{path}: {ln[:80]!r}: only B sources, buckbi's G/I/R linear units, an E buffer and "
                               "the reference's .machine cells are imported")
    return [("unit", it[1], Unit("linear", terms=tuple(fast[it[1]]["terms"]), bias=fast[it[1]]["bias"]))
            if it[0] == "unit" and it[2] is None else it for it in items]


def _fast_unit(fast: dict, node: str, line: str, path: Path) -> dict:
    """The unit a G or I source of buckbi's fast structure feeds (declared by its 1 Ohm to ground first)."""
    unit = fast.get(node.lower())
    if unit is None:
        raise ImportError_(f"{path}: {line[:80]!r}: a source into {node}, which has no 1 Ohm to ground before it")
    return unit


def _finite(text: str, line: str, path: Path) -> float:
    v = float(text)
    if not np.isfinite(v):
        raise ImportError_(f"{path}: cannot read {line[:120]!r}: a weight or bias is not finite")
    return v


def _layers(items: list[tuple], current: list[str], output: str, path: Path) -> nn.Sequential:
    """Group consecutive units into layers (a Linear, or one activation per unit), a .machine into its cell."""
    layers: list[nn.Module] = []
    width = len(current)
    units = {it[1]: it[2] for it in items if it[0] == "unit"}
    if output not in units:
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
        kind = items[i][2].kind
        group = [items[i][1]]
        while (i + len(group) < len(items) and items[i + len(group)][0] == "unit"
               and items[i + len(group)][2].kind == kind and kind != "copy"):
            group.append(items[i + len(group)][1])
        if kind == "linear":
            layers.append(_linear([units[n] for n in group], current, group, path))
            width, current = len(group), group
        elif kind == "act":
            first = units[group[0]]
            if any((units[n].act, units[n].params) != (first.act, first.params) for n in group) or \
                    [units[n].source for n in group] != current:
                raise ImportError_(f"{path}: the activation nodes {group[0]}.. do not map the previous layer one to one")
            layers.append(first.module())
            current = group
        else:  # copy: the output
            src = units[group[0]].source
            if group[0] != output or src != current[0] or len(current) != 1:
                raise ImportError_(f"{path}: node {group[0]} copies {src}: only the last node may be copied to "
                                   f"the output {output}")
            current = [output]
        i += len(group)
    if not layers or not isinstance(layers[0], (nn.Linear, *_CELLS)):
        raise ImportError_(f"{path}: no linear layer or recurrent cell found before the first activation")
    if current != [output] and width != 1:
        raise ImportError_(f"{path}: the last layer has {width} units; the output {output} takes one")
    return nn.Sequential(*layers).double().eval()


def _linear(units: list[Unit], current: list[str], group: list[str], path: Path) -> nn.Linear:
    pos = {n: k for k, n in enumerate(current)}
    w = np.zeros((len(group), len(current)))
    b = np.zeros(len(group))
    for r, (node, u) in enumerate(zip(group, units)):
        for src, val in u.terms:
            if src not in pos:
                raise ImportError_(f"{path}: node {node} reads {src}, which is not an output of the layer before")
            w[r, pos[src]] += val
        b[r] = u.bias
    lin = nn.Linear(len(current), len(group)).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    return lin
