"""Deployment weights: a network's weight tensors quantised per tensor, as a fixed-point or half-precision target
holds them (the exported subcircuit and the XSPICE element then carry the quantised values)."""
from __future__ import annotations

import copy

import torch
from torch import nn

WEIGHT_FORMATS = ("float16", "int8")


def quantize_weights(model: nn.Module, fmt: str) -> nn.Module:
    """A copy of ``model`` with every weight tensor (Linear and recurrent cells; biases kept, as int8 schemes keep
    them at higher precision) quantised: ``int8`` symmetric per tensor (scale = max|w| / 127, w = round(w/scale) *
    scale), ``float16`` rounded to half precision (biases too)."""
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {fmt!r}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if fmt == "float16":
                p.copy_(p.to(torch.float16).to(p.dtype))
            elif "weight" in name.rsplit(".", 1)[-1]:
                scale = p.abs().max() / 127
                if scale > 0:
                    p.copy_(torch.round(p / scale).clamp(-127, 127) * scale)
    return out
