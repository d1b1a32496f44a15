"""Emit the SPICE ``.subckt`` text for a lowered network."""
from __future__ import annotations

import numpy as np

from ..nn.activations import ACTIVATIONS, spice_number as num
from .graph import Activation, Affine, Cell, Op
from .xspice_text import render_xspice

DIALECTS = ("ngspice", "ltspice")
STRUCTURES = ("fast", "plain", "xspice")
TERMS_PER_LINE = 8

# Edge-triggered hold: the master tracks while CLK < 0.4 V, the slave while CLK > 0.6 V, so a
# state variable moves exactly once per rising edge, never twice (non-overlapping thresholds).
# The 1e15-ohm bleed sets a held node to 0 V in the initial operating point (Roff is far higher),
# yet droops it by only ~2e-11 of its value per millisecond.
HOLD_C = "1n"
HOLD_MODELS = (
    ".model BUCKBI_TRACKLOW SW(Vt=-0.4 Vh=0 Ron=1m Roff=1e30)",
    ".model BUCKBI_TRACKHIGH SW(Vt=0.6 Vh=0 Ron=1m Roff=1e30)",
)


class _Writer:
    """Accumulates element lines and hands out unique node names."""

    def __init__(self, dialect: str, structure: str):
        self.dialect = dialect
        self.structure = structure
        self.lines: list[str] = []

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    def select(self, cond: str, a: str, b: str) -> str:
        """Conditional expression: ``if()`` for LTspice, the ternary for ngspice (works in every mode)."""
        if self.dialect == "ltspice":
            return f"if({cond},{a},{b})"
        return f"(({cond}) ? ({a}) : ({b}))"

    def weighted_sum(self, name: str, inputs: list[str], weights: np.ndarray, bias: float) -> str:
        """Node holding sum(w*V(in)) + bias; returns the node name."""
        node = name
        terms = [(n, float(w)) for n, w in zip(inputs, weights) if w != 0.0]
        if self.structure == "fast":
            # Linear VCCS currents into 1 ohm: the matrix does the sum, no expression to evaluate.
            self.emit(f"R{name} {node} 0 1")
            for k, (inp, w) in enumerate(terms, 1):
                self.emit(f"G{name}_{k} 0 {node} {inp} 0 {num(w)}")
            if bias != 0.0:
                self.emit(f"I{name} 0 {node} {num(bias)}")
            return node
        parts = [num(bias)] if bias != 0.0 or not terms else []
        for inp, w in terms:
            sign = "-" if w < 0 else "+"
            parts.append(f"{sign}{num(abs(w))}*V({inp})")
        if parts and parts[0].startswith("+"):
            parts[0] = parts[0][1:]
        chunks = [" ".join(parts[i:i + TERMS_PER_LINE]) for i in range(0, len(parts), TERMS_PER_LINE)]
        self.emit(f"B{name} {node} 0 V={chunks[0]}", *(f"+ {c}" for c in chunks[1:]))
        return node

    def source(self, node: str, expr: str) -> str:
        self.emit(f"B{node} {node} 0 V={expr}")
        return node

    def hold(self, src: str, dst: str) -> str:
        """Edge-triggered master-slave sample-and-hold from ``src`` to ``dst``."""
        self.emit(
            f"S{dst}m {src} {dst}_m 0 CLK BUCKBI_TRACKLOW",
            f"C{dst}m {dst}_m 0 {HOLD_C}",
            f"E{dst}b {dst}_b 0 {dst}_m 0 1",  # buffer: no charge sharing between the two caps
            f"S{dst}s {dst}_b {dst} CLK 0 BUCKBI_TRACKHIGH",
            f"C{dst}s {dst} 0 {HOLD_C}",
            f"R{dst}s {dst} 0 1e15",
        )
        return dst


def activation_expr(w: _Writer, act: Activation, x: str) -> str:
    """B-source expression of ``act`` applied to expression ``x`` (the activation table's SPICE form)."""
    return ACTIVATIONS[act.kind].spice(x, act.params, w.select)


def _affine(w: _Writer, tag: str, op: Affine, inputs: list[str]) -> list[str]:
    return [w.weighted_sum(f"{tag}_{j + 1}", inputs, op.weight[j], op.bias[j]) for j in range(op.width)]


def _activation(w: _Writer, tag: str, op: Activation, inputs: list[str]) -> list[str]:
    return [w.source(f"{tag}_{j + 1}", activation_expr(w, op, f"V({n})")) for j, n in enumerate(inputs)]


def _cell(w: _Writer, tag: str, op: Cell, inputs: list[str]) -> list[str]:
    hid = op.width
    h = [f"{tag}h_{j + 1}" for j in range(hid)]
    xh = inputs + h
    w_all = np.hstack([op.w_ih, op.w_hh])
    b_all = op.b_ih + op.b_hh
    sig = Activation("sigmoid")

    def gate(name: str, rows: slice, act: Activation | None) -> list[str]:
        sums = [w.weighted_sum(f"{tag}{name}s_{j + 1}", xh, w_all[r], b_all[r])
                for j, r in enumerate(range(*rows.indices(w_all.shape[0])))]
        if act is None:
            return sums
        return [w.source(f"{tag}{name}_{j + 1}", activation_expr(w, act, f"V({s})")) for j, s in enumerate(sums)]

    if op.kind in ("rnn_tanh", "rnn_relu"):
        act = Activation("tanh" if op.kind == "rnn_tanh" else "relu")
        new = gate("n", slice(0, hid), act)
    elif op.kind == "gru":
        r = gate("r", slice(0, hid), sig)
        z = gate("z", slice(hid, 2 * hid), sig)
        xs = [w.weighted_sum(f"{tag}xn_{j + 1}", inputs, op.w_ih[2 * hid + j], op.b_ih[2 * hid + j])
              for j in range(hid)]
        hs = [w.weighted_sum(f"{tag}hn_{j + 1}", h, op.w_hh[2 * hid + j], op.b_hh[2 * hid + j])
              for j in range(hid)]
        n = [w.source(f"{tag}n_{j + 1}", f"tanh(V({xs[j]})+V({r[j]})*V({hs[j]}))") for j in range(hid)]
        new = [w.source(f"{tag}new_{j + 1}", f"(1-V({z[j]}))*V({n[j]})+V({z[j]})*V({h[j]})")
               for j in range(hid)]
    else:  # lstm: gates i, f, g, o
        i = gate("i", slice(0, hid), sig)
        f = gate("f", slice(hid, 2 * hid), sig)
        g = gate("g", slice(2 * hid, 3 * hid), Activation("tanh"))
        o = gate("o", slice(3 * hid, 4 * hid), sig)
        c = [f"{tag}c_{j + 1}" for j in range(hid)]
        cnew = [w.source(f"{tag}cnew_{j + 1}", f"V({f[j]})*V({c[j]})+V({i[j]})*V({g[j]})") for j in range(hid)]
        new = [w.source(f"{tag}new_{j + 1}", f"V({o[j]})*tanh(V({cnew[j]}))") for j in range(hid)]
        for j in range(hid):
            w.hold(w.source(f"{tag}cg_{j + 1}", f"V({cnew[j]})*V(buckbi_started)"), c[j])
    for j in range(hid):
        w.hold(w.source(f"{tag}hg_{j + 1}", f"V({new[j]})*V(buckbi_started)"), h[j])
    # The reference's timing: after rising edge t the output is f(x[t], h[t-1]) (combinational in the inputs the
    # circuit holds on the same clock), and the held state becomes h[t-1] on that edge (the value the cell computed
    # in the period before it). buckbi_started (0 until the first edge, then 1) keeps the first edge from latching
    # f(0, 0): the state starts at 0, as PyTorch's and the reference's.
    return new


def describe(ops: list[Op]) -> str:
    """One-line architecture summary for the netlist header."""
    parts = []
    for op in ops:
        if isinstance(op, Affine):
            parts.append(f"{op.source}({op.weight.shape[1]}->{op.width})")
        elif isinstance(op, Cell):
            parts.append(f"{op.kind}({op.w_ih.shape[1]}->{op.width})")
        else:
            args = ",".join(f"{k}={num(v)}" for k, v in op.params.items())
            parts.append(f"{op.kind}({args})" if args else op.kind)
    return " ".join(parts)


def render(ops: list[Op], n_in: int, n_out: int, *, subckt_name: str, dialect: str, structure: str,
           input_names: list[str], output_names: list[str], clocked: bool, codemodel=None,
           notes: tuple[str, ...] = ()) -> str:
    """Full subcircuit text; ``notes``: more comment lines for its header (each written as '* note')."""
    extra = [f"* {n}" for n in notes]
    if structure == "xspice":
        head = [f"* {subckt_name}: exported by buckbi ({dialect} dialect, xspice structure)",
                f"* {describe(ops) or 'identity'}", f"* inputs {n_in}, outputs {n_out}", *extra]
        return render_xspice(ops, subckt_name=subckt_name, input_names=input_names, output_names=output_names,
                             header=head, codemodel=codemodel)
    w = _Writer(dialect, structure)
    if clocked:
        w.hold(w.source("buckbi_one", "1"), "buckbi_started")
    nodes = list(input_names)
    for layer, op in enumerate(ops, 1):
        tag = f"L{layer}"
        if isinstance(op, Affine):
            nodes = _affine(w, tag, op, nodes)
        elif isinstance(op, Activation):
            nodes = _activation(w, tag, op, nodes)
        else:
            nodes = _cell(w, tag, op, nodes)
    # Outputs are driven by ideal sources so a load on NNOUT cannot disturb the net.
    for out, node in zip(output_names, nodes):
        w.emit(f"E{out} {out} 0 {node} 0 1")
    # The reference exporter's port order: inputs, CLK, outputs (its GRU gym: X99 NNin1 ... NNin8 ctrlclk NNout1)
    ports = " ".join([*input_names, *(["CLK"] if clocked else []), *output_names])
    head = [
        f"* {subckt_name}: exported by buckbi ({dialect} dialect, {structure} structure)",
        f"* {describe(ops) or 'identity'}",
        f"* inputs {n_in}, outputs {n_out}" + ("; ports: inputs, CLK, outputs; after rising CLK edge t the outputs "
                                               "are f(x[t], h[t-1]), the state updated on that edge" if clocked else ""),
        *extra,
        f".subckt {subckt_name} {ports}",
    ]
    models = list(HOLD_MODELS) if clocked else []
    return "\n".join([*head, *models, *w.lines, f".ends {subckt_name}", ""])
