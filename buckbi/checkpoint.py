"""Actor checkpoints that carry their architecture, and loading of the seed notebook's state_dicts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .fsutil import atomic_write
from .nn.activations import MODULES

FORMAT = "buckbi-checkpoint"
VERSION = 1

# Constructor arguments worth recording per module type (others are rebuilt with defaults).
_ARGS = {
    "Linear": lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None},
    "BatchNorm1d": lambda m: {"num_features": m.num_features, "eps": m.eps, "momentum": m.momentum,
                              "affine": m.affine, "track_running_stats": m.track_running_stats},
    "Dropout": lambda m: {"p": m.p},
    "Flatten": lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    "RNNCell": lambda m: {"input_size": m.input_size, "hidden_size": m.hidden_size, "bias": m.bias,
                          "nonlinearity": m.nonlinearity},
    "GRUCell": lambda m: {"input_size": m.input_size, "hidden_size": m.hidden_size, "bias": m.bias},
    "LSTMCell": lambda m: {"input_size": m.input_size, "hidden_size": m.hidden_size, "bias": m.bias},
}
_ARGS |= {e.module.__name__: e.ctor for e in MODULES}  # activations: the table's constructor arguments
_PLAIN = ("Identity",)


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or rebuilt into a network."""


def architecture(model: nn.Module) -> dict[str, Any]:
    """JSON-able description of a (nested) Sequential, enough to rebuild it."""
    name = type(model).__name__
    if isinstance(model, nn.Sequential):
        return {"type": "Sequential", "children": [[k, architecture(c)] for k, c in model.named_children()]}
    if name in _ARGS:
        return {"type": name, "args": _ARGS[name](model)}
    if name in _PLAIN:
        return {"type": name, "args": {}}
    raise CheckpointError(f"cannot record the architecture of {name}; supported: "
                          f"Sequential, {', '.join([*_ARGS, *_PLAIN])}")


def build(spec: dict[str, Any]) -> nn.Module:
    """Inverse of :func:`architecture`."""
    kind = spec.get("type")
    if kind == "Sequential":
        seq = nn.Sequential()
        for key, child in spec["children"]:
            seq.add_module(key, build(child))
        return seq
    if kind in _ARGS or kind in _PLAIN:
        return getattr(nn, kind)(**spec.get("args", {}))
    raise CheckpointError(f"unknown layer type {kind!r} in checkpoint architecture")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta: Any) -> Path:
    """Save weights, architecture and ``meta`` atomically."""
    payload = {"format": FORMAT, "version": VERSION, "architecture": architecture(model),
               "state_dict": model.state_dict(), "meta": meta}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def seed_actor(input_dim: int = 19, hidden1: int = 32, hidden2: int = 16, output_dim: int = 1) -> nn.Sequential:
    """The seed notebook's Actor network: Linear-ReLU-Linear-ReLU-Linear-Sigmoid."""
    return nn.Sequential(nn.Linear(input_dim, hidden1), nn.ReLU(), nn.Linear(hidden1, hidden2), nn.ReLU(),
                         nn.Linear(hidden2, output_dim), nn.Sigmoid())


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Sequential, dict[str, Any]]:
    """Load a buckbi checkpoint or a seed ``actor_*.pth`` state_dict; returns (network, meta)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a PyTorch file "
            f"({type(err).__name__}: {(str(err).splitlines() or [''])[0][:160]}). "
            "Use an earlier per-episode checkpoint (actor_epN.pth) or start fresh.") from err
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        try:
            model = build(obj["architecture"])
            state, meta = obj["state_dict"], dict(obj.get("meta", {}))
        except CheckpointError as err:
            raise CheckpointError(f"checkpoint {path}: {err}") from err
        except Exception as err:  # a damaged architecture record (a missing key, a wrong type)
            raise CheckpointError(f"checkpoint {path} is corrupt: its architecture record cannot be read "
                                  f"({type(err).__name__}: {str(err)[:120]}). Use an earlier per-episode "
                                  "checkpoint (actor_epN.pth) or start fresh.") from err
    elif isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        model, state, meta = _seed_layout(obj, path), _strip_prefix(obj), {"source": "seed state_dict"}
    else:
        raise CheckpointError(f"{path} is neither a buckbi checkpoint nor a state_dict of tensors")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as err:
        raise CheckpointError(f"weights in {path} do not fit its architecture: {err}") from err
    return model, meta


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("model."): v for k, v in state.items()}


def _seed_layout(state: dict[str, torch.Tensor], path: Path) -> nn.Sequential:
    """Rebuild the seed Actor from its state_dict shapes (keys model.0/2/4.weight)."""
    keys = sorted(k for k in _strip_prefix(state) if k.endswith(".weight"))
    if keys != ["0.weight", "2.weight", "4.weight"]:
        raise CheckpointError(
            f"{path} is a bare state_dict whose keys {keys} are not the seed Actor's (model.0/2/4); "
            "without the architecture it cannot be rebuilt. Save it with buckbi.checkpoint.save_checkpoint().")
    s = _strip_prefix(state)
    (h1, n_in), (h2, _), (n_out, _) = s["0.weight"].shape, s["2.weight"].shape, s["4.weight"].shape
    return seed_actor(n_in, h1, h2, n_out)
