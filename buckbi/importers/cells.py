"""The reference exporter's recurrent cells (LTspice ``.machine`` blocks) read back as PyTorch cells.

kosokno/pytorch2ltspice writes an ``nn.RNNCell``, ``nn.GRUCell`` or ``nn.LSTMCell`` as one ``.machine`` with states
LO/LATCH/HI on the CLK pin: in LATCH the latches ``LH{c}_{j}`` (and ``LC{c}_{j}``) copy the cell's outputs, in HI
the outputs take the cell's update from the inputs and the latches. The weights are printed with 6 decimals; the
GRU's and LSTM's r/z (i/f/g/o) biases as b_ih + b_hh (summed: only the sum reaches the sigmoid), the GRU's n-gate
biases apart (r multiplies the hidden part). Read back, the sums go to ``bias_ih`` and ``bias_hh`` holds the rest.
"""
from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn

from .exprs import NUM as _NUM

_OUTPUT = re.compile(r"^\.output\((\w+)\)IF\(\(state==(\d)\),(.+),V\(\1\)\)$", re.IGNORECASE)  # no whitespace
_TERM = re.compile(rf"V\((\w+)\)\*\(({_NUM})\)|\(({_NUM})\)\*V\((\w+)\)", re.IGNORECASE)
_SUM = rf"(?:(?:V\(\w+\)\*\({_NUM}\)|\({_NUM}\)\*V\(\w+\))\+)*\({_NUM}\)"
_SIG = rf"\(1/\(1\+EXP\(-\(({_SUM})\)\)\)\)"
_RULES = {".state lo 0", ".state latch 1", ".state hi 2", ".rule lo latch v(clk)>.5", ".rule latch hi v(clk)>.9",
          ".rule * lo v(clk)<.5"}


class CellImportError(ValueError):
    """A ``.machine`` block that is not one of the reference exporter's recurrent cells."""


def _full(pattern: str, expr: str) -> re.Match | None:
    return re.fullmatch(pattern, expr, re.IGNORECASE)


def _affine(expr: str, inputs: dict[str, int], latches: dict[str, int], what: str) -> tuple[np.ndarray, np.ndarray,
                                                                                              float]:
    """The weights over the inputs and the latches, and the bias, of one printed sum."""
    w_x, w_h = np.zeros(len(inputs)), np.zeros(len(latches))
    for node_a, val_a, val_b, node_b in _TERM.findall(expr):
        node, val = (node_a or node_b).upper(), float(val_a or val_b)
        if not np.isfinite(val):
            raise CellImportError(f"{what}: the weight of V({node}) is not finite ({val_a or val_b})")
        if node in inputs:
            w_x[inputs[node]] += val
        elif node in latches:
            w_h[latches[node]] += val
        else:
            raise CellImportError(f"{what} reads V({node}), which is neither an input of the cell nor its latch")
    rest = _TERM.sub("", expr).strip("+")
    m = _full(rf"\(({_NUM})\)", rest)
    if not m:
        raise CellImportError(f"{what}: expected V(node)*(weight) terms and one (bias), found {rest[:60]!r}")
    if not np.isfinite(float(m.group(1))):
        raise CellImportError(f"{what}: the bias is not finite ({m.group(1)})")
    return w_x, w_h, float(m.group(1))


def parse_machine(lines: list[str], inputs: list[str], index: int) -> tuple[nn.Module, list[str]]:
    """The cell of one ``.machine`` block (its lines without .machine/.endmachine, whitespace kept) reading the
    nodes ``inputs``; returns the PyTorch cell and the nodes the next layer reads (its h outputs)."""
    rules, updates, latch_src = set(), {}, {}
    for ln in lines:
        low = " ".join(ln.lower().split())
        if low.startswith((".state", ".rule")):
            rules.add(low)
            continue
        m = _OUTPUT.match(re.sub(r"\s+", "", ln))
        if not m:
            raise CellImportError(f"line {ln[:100]!r}: not '.output (node) IF((state==k), expr, V(node))'")
        node, state, expr = m.group(1).upper(), int(m.group(2)), m.group(3)
        if state == 1:
            src = _full(r"V\((\w+)\)", expr)
            if not src:
                raise CellImportError(f"line {ln[:100]!r}: a latch copies one node, V(node)")
            latch_src[node] = src.group(1).upper()
        elif state == 2:
            updates[node] = expr
        else:
            raise CellImportError(f"line {ln[:100]!r}: the exporter's cells act in states 1 (LATCH) and 2 (HI)")
    if rules != _RULES:
        raise CellImportError(f"the .machine's states and rules are not the exporter's LO/LATCH/HI on V(CLK) "
                              f"(missing: {sorted(_RULES - rules)}, extra: {sorted(rules - _RULES)})")
    x_pos = {n.upper(): i for i, n in enumerate(inputs)}
    if f"COUT{index}_1" in updates:
        return _lstm(updates, latch_src, x_pos, index)
    if f"GRU{index}_R1" in updates:
        return _gru(updates, latch_src, x_pos, index)
    return _rnn(updates, latch_src, x_pos, index)


def _hidden(latch_src: dict[str, str], prefix: str, src_prefix: str, index: int) -> dict[str, int]:
    """The latch nodes {prefix}{index}_{j} -> j, each copying {src_prefix}{index}_{j}."""
    out = {}
    for j in range(1, len(latch_src) + 1):
        name = f"{prefix}{index}_{j}"
        if name not in latch_src:
            break
        if latch_src[name] != f"{src_prefix}{index}_{j}":
            raise CellImportError(f"latch {name} copies {latch_src[name]}, not {src_prefix}{index}_{j}")
        out[name] = j - 1
    if not out:
        raise CellImportError(f"no latches {prefix}{index}_1.. in the .machine")
    return out


def _set(cell: nn.Module, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> nn.Module:
    cell = cell.double()
    with torch.no_grad():
        for p, v in ((cell.weight_ih, w_ih), (cell.weight_hh, w_hh), (cell.bias_ih, b_ih), (cell.bias_hh, b_hh)):
            p.copy_(torch.from_numpy(np.asarray(v, dtype=np.float64)))
    return cell


def _rnn(updates, latch_src, x_pos, c):
    lh = _hidden(latch_src, "LH", "HOUT", c)
    H, rows, kinds = len(lh), [], set()
    for j in range(1, H + 1):
        expr = updates.get(f"HOUT{c}_{j}")
        if expr is None:
            raise CellImportError(f"RNN cell {c}: no update of HOUT{c}_{j}")
        m = _full(rf"\(TANH\(({_SUM})\)\)", expr)
        kinds.add("tanh" if m else "relu")
        m = m or _full(rf"\(IF\(\(({_SUM})\)>0,\(\1\),0\)\)", expr)
        if not m:
            raise CellImportError(f"RNN cell {c}: HOUT{c}_{j} is not TANH(sum) or IF((sum)>0,(sum),0)")
        rows.append(_affine(m.group(1), x_pos, lh, f"HOUT{c}_{j}"))
    if len(kinds) > 1:
        raise CellImportError(f"RNN cell {c} mixes tanh and ReLU units")
    w_x, w_h, b = (np.array(v) for v in zip(*rows))
    cell = nn.RNNCell(len(x_pos), H, nonlinearity=kinds.pop())
    return _set(cell, w_x, w_h, b, np.zeros(H)), [f"HOUT{c}_{j}" for j in range(1, H + 1)]


def _gru(updates, latch_src, x_pos, c):
    lh = _hidden(latch_src, "LH", "HOUT", c)
    H = len(lh)
    gates = {g: [] for g in "rzn"}
    b_hn = np.zeros(H)
    w_hn = np.zeros((H, H))
    for j in range(1, H + 1):
        def get(node):
            if node not in updates:
                raise CellImportError(f"GRU cell {c}: no update of {node}")
            return re.sub(r"\s+", "", updates[node])
        for g in "RZ":
            m = _full(_SIG, get(f"GRU{c}_{g}{j}"))
            if not m:
                raise CellImportError(f"GRU cell {c}: GRU{c}_{g}{j} is not the sigmoid of a sum")
            gates[g.lower()].append(_affine(m.group(1), x_pos, lh, f"GRU{c}_{g}{j}"))
        m = _full(rf"\(({_SUM})\)", get(f"GRU{c}_NX{j}"))
        if not m:
            raise CellImportError(f"GRU cell {c}: GRU{c}_NX{j} is not a sum of the inputs")
        w_x, w_h, b = _affine(m.group(1), x_pos, lh, f"GRU{c}_NX{j}")
        if w_h.any():
            raise CellImportError(f"GRU cell {c}: GRU{c}_NX{j} reads the latches (it is the input part of n)")
        gates["n"].append((w_x, w_h, b))
        m = _full(rf"\(({_SUM})\)", get(f"GRU{c}_HH{j}"))
        if not m:
            raise CellImportError(f"GRU cell {c}: GRU{c}_HH{j} is not a sum of the latches")
        w_x, w_hn[j - 1], b_hn[j - 1] = _affine(m.group(1), {}, lh, f"GRU{c}_HH{j}")
        fixed = {f"GRU{c}_NH{j}": rf"\(V\(GRU{c}_R{j}\)\*V\(GRU{c}_HH{j}\)\)",
                 f"GRU{c}_N{j}": rf"TANH\(V\(GRU{c}_NX{j}\)\+V\(GRU{c}_NH{j}\)\)",
                 f"HOUT{c}_{j}": rf"\(\(1-V\(GRU{c}_Z{j}\)\)\*V\(GRU{c}_N{j}\)\+V\(GRU{c}_Z{j}\)\*V\(LH{c}_{j}\)\)"}
        for node, pattern in fixed.items():
            if not _full(pattern, get(node)):
                raise CellImportError(f"GRU cell {c}: {node} is not the GRU's update as the exporter writes it")
    (wr_x, wr_h, br), (wz_x, wz_h, bz), (wn_x, _, bn) = ((np.array(v) for v in zip(*gates[g])) for g in "rzn")
    cell = nn.GRUCell(len(x_pos), H)
    return (_set(cell, np.vstack([wr_x, wz_x, wn_x]), np.vstack([wr_h, wz_h, w_hn]), np.r_[br, bz, bn],
                 np.r_[np.zeros(2 * H), b_hn]), [f"HOUT{c}_{j}" for j in range(1, H + 1)])


def _lstm(updates, latch_src, x_pos, c):
    lh = _hidden(latch_src, "LH", "HOUT", c)
    lc = _hidden(latch_src, "LC", "COUT", c)
    H = len(lh)
    if len(lc) != H:
        raise CellImportError(f"LSTM cell {c}: {len(lh)} h latches but {len(lc)} c latches")
    gates = {g: [] for g in "ifgo"}
    for j in range(1, H + 1):
        c_expr = re.sub(r"\s+", "", updates.get(f"COUT{c}_{j}", ""))
        h_expr = re.sub(r"\s+", "", updates.get(f"HOUT{c}_{j}", ""))
        m = _full(rf"\(\({_SIG}\)\*V\(LC{c}_{j}\)\+\({_SIG}\)\*\(\(TANH\(({_SUM})\)\)\)\)", c_expr)
        h = _full(rf"\(\({_SIG}\)\*TANH\({re.escape(c_expr)}\)\)", h_expr) if m else None
        if not (m and h):
            raise CellImportError(f"LSTM cell {c}: COUT{c}_{j} / HOUT{c}_{j} are not the LSTM's update as the "
                                  "exporter writes it")
        for g, s in (("f", m.group(1)), ("i", m.group(2)), ("g", m.group(3)), ("o", h.group(1))):
            gates[g].append(_affine(s, x_pos, lh, f"the {g} gate of unit {j}"))
    parts = [[np.array(v) for v in zip(*gates[g])] for g in "ifgo"]  # PyTorch's gate order
    cell = nn.LSTMCell(len(x_pos), H)
    return (_set(cell, np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts]),
                 np.concatenate([p[2] for p in parts]), np.zeros(4 * H)), [f"HOUT{c}_{j}" for j in range(1, H + 1)])
