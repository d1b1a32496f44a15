"""Lower a PyTorch ``nn.Sequential`` to a flat list of exact float64 operations."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ..nn.activations import MODULES, module_entry


class ExportError(ValueError):
    """A model cannot be exported to SPICE as it is."""


class UnsupportedLayerError(ExportError, TypeError):
    """The model holds a module the exporter does not translate."""


class NonFiniteWeightError(ExportError):
    """A parameter or buffer is NaN or infinite."""


class WidthMismatchError(ExportError):
    """Consecutive layers disagree on the number of features."""


class TrainingModeError(ExportError):
    """BatchNorm/Dropout in training mode have no fixed eval-mode meaning."""


@dataclass
class Affine:
    """y = W x + b; ``diagonal`` marks a BatchNorm that found no Linear to fold into."""

    weight: np.ndarray
    bias: np.ndarray
    source: str = "Linear"

    @property
    def width(self) -> int:
        return self.weight.shape[0]


@dataclass
class Activation:
    """Element-wise nonlinearity with its float parameters."""

    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class Cell:
    """A recurrent cell; its hidden state is held between rising CLK edges."""

    kind: str  # rnn_tanh | rnn_relu | gru | lstm
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def width(self) -> int:
        return self.w_hh.shape[1]


Op = Affine | Activation | Cell

# Layers whose forward is the identity in eval mode (Flatten only on (batch, features) input).
_NO_OPS = (nn.Identity, nn.Dropout, nn.Flatten)


SUPPORTED = ("Linear", *(m.module.__name__ for m in MODULES), "Identity", "Dropout", "Flatten", "BatchNorm1d",
             "Sequential", "RNNCell", "GRUCell", "LSTMCell")


def _array(t, what: str) -> np.ndarray:
    """Parameter as float64 (exact for float32 sources), refusing NaN/inf."""
    a = t.detach().cpu().double().numpy().copy()
    if not np.all(np.isfinite(a)):
        raise NonFiniteWeightError(
            f"{what} holds non-finite values (NaN or inf); SPICE cannot represent them. "
            "Fix the training run or replace the offending parameters before exporting."
        )
    return a


def _walk(module: nn.Module, path: str):
    """Yield (path, leaf module) through nested Sequentials."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _walk(child, f"{path}.{name}" if path else name)
    else:
        yield path, module


def _lower_module(path: str, m: nn.Module) -> list[Op]:
    label = f"{type(m).__name__} at '{path or '<root>'}'"
    if isinstance(m, nn.Linear):
        w = _array(m.weight, f"{label} weight")
        b = _array(m.bias, f"{label} bias") if m.bias is not None else np.zeros(w.shape[0])
        return [Affine(w, b)]
    if isinstance(m, nn.BatchNorm1d):
        if m.training:
            raise TrainingModeError(f"{label} is in training mode; call model.eval() before exporting.")
        if not m.track_running_stats or m.running_mean is None:
            raise ExportError(f"{label} has no running statistics (track_running_stats=False); "
                              "it has no fixed eval-mode function to export.")
        mean = _array(m.running_mean, f"{label} running_mean")
        var = _array(m.running_var, f"{label} running_var")
        gamma = _array(m.weight, f"{label} weight") if m.affine else np.ones_like(mean)
        beta = _array(m.bias, f"{label} bias") if m.affine else np.zeros_like(mean)
        scale = gamma / np.sqrt(var + float(m.eps))
        return [Affine(np.diag(scale), beta - mean * scale, source="BatchNorm1d")]
    if isinstance(m, nn.Dropout):
        if m.training:
            raise TrainingModeError(f"{label} is in training mode; call model.eval() before exporting.")
        return []
    if isinstance(m, _NO_OPS):
        return []
    entry = module_entry(m)
    if entry is not None:
        return [Activation(entry.kind, entry.params(m))]
    if isinstance(m, nn.RNNCell):
        kind = "rnn_tanh" if m.nonlinearity == "tanh" else "rnn_relu"
        return [_cell(kind, m, label)]
    if isinstance(m, nn.GRUCell):
        return [_cell("gru", m, label)]
    if isinstance(m, nn.LSTMCell):
        return [_cell("lstm", m, label)]
    raise UnsupportedLayerError(
        f"cannot export {label}: {type(m).__name__} is not supported. "
        f"Supported modules: {', '.join(SUPPORTED)}. Replace the module or extend buckbi.export."
    )


def _cell(kind: str, m: nn.Module, label: str) -> Cell:
    w_ih = _array(m.weight_ih, f"{label} weight_ih")
    w_hh = _array(m.weight_hh, f"{label} weight_hh")
    zeros = np.zeros(w_ih.shape[0])
    b_ih = _array(m.bias_ih, f"{label} bias_ih") if m.bias else zeros
    b_hh = _array(m.bias_hh, f"{label} bias_hh") if m.bias else zeros
    return Cell(kind, w_ih, w_hh, b_ih, b_hh)


def _fold_batchnorm(ops: list[Op]) -> list[Op]:
    """Fold each BatchNorm into an adjacent Linear: the previous one first, else the next."""
    out: list[Op] = []
    for op in ops:
        prev = out[-1] if out else None
        if isinstance(op, Affine) and op.source == "BatchNorm1d" and isinstance(prev, Affine):
            # BN(W x + b) = diag(s) W x + s*b + c
            out[-1] = Affine(op.weight @ prev.weight, op.weight @ prev.bias + op.bias, prev.source)
        elif isinstance(op, Affine) and op.source == "Linear" and isinstance(prev, Affine) \
                and prev.source == "BatchNorm1d":
            # W (diag(s) x + c) + b
            out[-1] = Affine(op.weight @ prev.weight, op.weight @ prev.bias + op.bias, "Linear")
        else:
            out.append(op)
    return out


def input_width(ops: list[Op]) -> int | None:
    """Number of inputs implied by the first weighted op, None if the net has none."""
    for op in ops:
        if isinstance(op, Affine):
            return op.weight.shape[1]
        if isinstance(op, Cell):
            return op.w_ih.shape[1]
    return None


def lower(model: nn.Module, n_inputs: int | None = None) -> tuple[list[Op], int, int]:
    """Validate ``model`` and return (ops, n_inputs, n_outputs)."""
    if not isinstance(model, nn.Module):
        raise ExportError(f"expected a torch.nn.Module, got {type(model).__name__}")
    raw: list[Op] = []
    for path, leaf in _walk(model, ""):
        raw.extend(_lower_module(path, leaf))
    n_in = _check_widths(raw, n_inputs)
    ops = _fold_batchnorm(raw)
    width = _out_width(ops, n_in)
    for op in ops:
        if isinstance(op, Activation) and op.kind == "softplus" and op.params["beta"] == 0:
            raise ExportError("Softplus with beta=0 divides by zero; use beta > 0.")
        for v in getattr(op, "params", {}).values():
            if not math.isfinite(v):
                raise NonFiniteWeightError(f"activation {op.kind} has a non-finite parameter {v}")
    return ops, n_in, width


def _out_width(ops: list[Op], width: int) -> int:
    for op in ops:
        if isinstance(op, (Affine, Cell)):
            width = op.width
    return width


def _check_widths(ops: list[Op], n_inputs: int | None) -> int:
    """Check each weighted op against the width before it; returns the input width."""
    width = input_width(ops) if n_inputs is None else n_inputs
    if width is None:
        raise ExportError("the model has no Linear or recurrent layer, so its input width is unknown; "
                          "pass input_names=[...] to say how many inputs it has.")
    n_in = width
    for i, op in enumerate(ops):
        if isinstance(op, Affine):
            need, what = op.weight.shape[1], op.source
        elif isinstance(op, Cell):
            need, what = op.w_ih.shape[1], op.kind
        else:
            continue
        if need != width:
            raise WidthMismatchError(f"weighted layer {i + 1} ({what}) expects {need} features but the "
                                     f"previous layer gives {width}; fix the layer sizes.")
        width = op.width
    return n_in


def has_state(ops: list[Op]) -> bool:
    """True when the net holds recurrent state and therefore needs a CLK pin."""
    return any(isinstance(op, Cell) for op in ops)
