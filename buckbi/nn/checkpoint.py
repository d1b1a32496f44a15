"""Actor checkpoints that carry their architecture, and loading of the seed notebook's state_dicts."""
from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..util.fsutil import atomic_write
from .activations import MODULES

log = logging.getLogger("buckbi.checkpoint")
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


OUTPUTS = ("sigmoid", "clamp")
HIDDEN = ("relu", "leaky_relu")


def fresh_actor(output: str = "sigmoid", hidden: str = "relu") -> nn.Sequential:
    """A freshly initialised 19-32-16-1 actor. "sigmoid": the seed's. "clamp": the same draws ending in a duty limiter
    (Hardtanh 0..1), its last layer scaled so that it starts as hardsigmoid of the seed's pre-activation; linear over
    the whole duty range, where a sigmoid flattens towards small and large duties. ``hidden``: the hidden layers'
    activation, the seed's ReLU or LeakyReLU(0.01) (the same draws: a unit whose inputs all fall below zero keeps a
    gradient instead of dying)."""
    if hidden not in HIDDEN:
        raise CheckpointError(f"unknown hidden activation {hidden!r}; choose one of {', '.join(HIDDEN)}")
    actor = seed_actor()
    if hidden == "leaky_relu":
        for k, layer in enumerate(actor):
            if isinstance(layer, nn.ReLU):
                actor[k] = nn.LeakyReLU(0.01)
    if output == "sigmoid":
        return actor
    if output != "clamp":
        raise CheckpointError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    last = actor[-2]
    with torch.no_grad():
        last.weight.div_(6.0)
        last.bias.copy_(last.bias / 6.0 + 0.5)
    actor[-1] = nn.Hardtanh(0.0, 1.0)
    return actor


def load_checkpoint(path: str | os.PathLike, arch: str | None = None,
                    trust_pickle: bool = False) -> tuple[nn.Sequential, dict[str, Any]]:
    """Load a network as the user has it; returns (network, meta).

    Forms: a buckbi checkpoint (architecture recorded); a bare state dict with ``arch`` (e.g.
    ``"19-64-64-1:tanh,tanh,sigmoid"``), or without it only in the seed Actor's exact layout (19-32-16-1, which the
    seed saves); a full pickled module or a TorchScript file with ``trust_pickle`` (loading runs the file's code).
    Never guesses activations: anything else is a CheckpointError naming the way out.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; give the .pth file in it (e.g. {path}/actor_final.pth)")
    if _is_torchscript(path):
        return _load_torchscript(path, trust_pickle), {"source": "TorchScript"}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err):  # it names a class
            return _load_pickled_module(path, trust_pickle), {"source": "pickled module"}
        raise CheckpointError(f"checkpoint {path} is corrupt or not a PyTorch file ({_one_line(err)}). "
                              + _earlier_checkpoints(path)) from err
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        try:
            model = build(obj["architecture"])
            state, meta = obj["state_dict"], dict(obj.get("meta", {}))
        except CheckpointError as err:
            raise CheckpointError(f"checkpoint {path}: {err}") from err
        except Exception as err:  # a damaged architecture record (a missing key, a wrong type)
            raise CheckpointError(f"checkpoint {path} is corrupt: its architecture record cannot be read "
                                  f"({_one_line(err)}). " + _earlier_checkpoints(path)) from err
        if arch is not None:
            log.info("%s records its architecture; --arch %s is not used", path, arch)
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if arch is not None:
            model, state = from_arch(arch), _positional_state(obj, from_arch(arch), path, arch)
            meta = {"source": f"state dict, --arch {arch}"}
        else:
            model, state, meta = _seed_layout(obj, path), _strip_prefix(obj), {"source": "seed state_dict"}
    else:
        raise CheckpointError(f"{path} is neither a buckbi checkpoint nor a state dict of tensors "
                              f"(it holds a {type(obj).__name__}); save the network with buckbi.save_checkpoint("
                              f"model, path) or torch.save(model.state_dict(), path) and give --arch")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, KeyError) as err:
        raise CheckpointError(f"weights in {path} do not fit its architecture: {_one_line(err)}") from err
    return model, meta


def check_actor_shape(model: nn.Module, source: str | os.PathLike, inputs: int = 19, outputs: int = 1) -> None:
    """A network to train or run as the actor takes the 19 NN inputs and gives the one duty output."""
    layers = [m for m in model.modules() if hasattr(m, "in_features") or hasattr(m, "input_size")]
    if not layers:
        return
    n_in = getattr(layers[0], "in_features", getattr(layers[0], "input_size", inputs))
    n_out = getattr(layers[-1], "out_features", getattr(layers[-1], "hidden_size", outputs))
    if n_in != inputs or n_out != outputs:
        raise CheckpointError(f"{source}: the network maps {n_in} inputs to {n_out} outputs; the actor takes the "
                              f"{inputs} NN inputs (NNin1..NNin{inputs}) and gives {outputs} duty output")


# --- architecture strings: "19-64-64-1:tanh,tanh,sigmoid" ---------------------------------------------------------

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "hardsigmoid": nn.Hardsigmoid,
        "relu6": nn.ReLU6, "hardtanh": nn.Hardtanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU,
        "softplus": nn.Softplus}
_NONE = ("none", "linear", "identity")
_ACT_RE = re.compile(r"^([a-z_0-9]+)(?:\(([^()]*)\))?$")


def from_arch(arch: str) -> nn.Sequential:
    """The Sequential an architecture string describes: widths, then one activation per Linear layer."""
    how = ("write it as WIDTHS:ACTIVATIONS, e.g. '19-64-64-1:tanh,tanh,sigmoid' (one activation per Linear layer, "
           f"from {', '.join([*_ACT, 'none'])}; parameters in brackets, e.g. leaky_relu(0.1))")
    widths_text, sep, acts_text = arch.strip().partition(":")
    try:
        widths = [int(w) for w in widths_text.split("-")]
    except ValueError:
        raise CheckpointError(f"--arch {arch!r}: the widths are not integers; {how}") from None
    if not sep or len(widths) < 2 or min(widths) < 1:
        raise CheckpointError(f"--arch {arch!r}: {how}")
    acts = [a.strip().lower() for a in acts_text.split(",")]
    if len(acts) != len(widths) - 1:
        raise CheckpointError(f"--arch {arch!r}: {len(widths) - 1} Linear layers but {len(acts)} activations; {how}")
    seq = nn.Sequential()
    for k, (a, n_in, n_out) in enumerate(zip(acts, widths, widths[1:])):
        seq.append(nn.Linear(n_in, n_out))
        m = _ACT_RE.match(a)
        if m is None or (m.group(1) not in _ACT and m.group(1) not in _NONE):
            raise CheckpointError(f"--arch {arch!r}: unknown activation {a!r} after Linear layer {k + 1}; {how}")
        if m.group(1) in _NONE:
            continue
        try:
            args = [float(x) for x in m.group(2).split(",")] if m.group(2) else []
            seq.append(_ACT[m.group(1)](*args))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"--arch {arch!r}: {a!r}: {_one_line(err)}; {how}") from None
    return seq


def _positional_state(state: dict[str, torch.Tensor], model: nn.Sequential, path: Path,
                      arch: str) -> dict[str, torch.Tensor]:
    """The state dict's Linear weights and biases, in their saved order, under ``model``'s keys (any names)."""
    want = [(k, v.shape) for k, v in model.state_dict().items()]
    have = [(k, v) for k, v in state.items() if k.endswith(("weight", "bias"))]
    found = " ".join(f"{k}{tuple(v.shape)}" for k, v in have)
    if len(have) != len(want) or any(tuple(v.shape) != tuple(s) for (_, s), (_, v) in zip(want, have)):
        raise CheckpointError(f"{path}: its tensors ({found}) do not fit --arch {arch!r} (which wants "
                              + " ".join(f"{k}{tuple(s)}" for k, s in want) + "); give the widths of the saved network")
    return {k: v for (k, _), (_, v) in zip(want, have)}


def _linear_shapes(state: dict[str, torch.Tensor]) -> str:
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not weights:
        return "no Linear weights"
    return "-".join([str(weights[0].shape[1])] + [str(w.shape[0]) for w in weights])


def _seed_layout(state: dict[str, torch.Tensor], path: Path) -> nn.Sequential:
    """The seed Actor (19-32-16-1, ReLU, ReLU, Sigmoid) from its bare state dict; any other layout is refused."""
    s = _strip_prefix(state)
    keys = sorted(s)
    shapes = {k: tuple(v.shape) for k, v in s.items()}
    seed = {"0.weight": (32, 19), "0.bias": (32,), "2.weight": (16, 32), "2.bias": (16,), "4.weight": (1, 16),
            "4.bias": (1,)}
    if shapes != seed:
        raise CheckpointError(
            f"{path} is a bare state dict (Linear {_linear_shapes(s)}, keys {', '.join(keys[:8])}) without the "
            "activations, and not the seed Actor's 19-32-16-1 layout; buckbi does not guess them. Give them with "
            f"--arch, e.g. --arch '{_linear_shapes(s)}:relu,...,sigmoid' (one per Linear layer), or save a buckbi "
            "checkpoint: buckbi.save_checkpoint(model, 'actor.pth')")
    return seed_actor()


# --- pickled modules and TorchScript (only with trust_pickle) ------------------------------------------------------

def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for n in z.namelist())
    except Exception:  # not a zip, or one whose names do not decode: torch.load judges it
        return False


def _refuse_untrusted(path: Path, what: str) -> None:
    raise CheckpointError(f"{path} is {what}: loading it runs code stored in the file. If you trust its source, add "
                          "--trust-pickle (pytest: --buckbi-trust-pickle); or save torch.save(model.state_dict(), "
                          "path) and give --arch, or save a buckbi checkpoint with buckbi.save_checkpoint(model, path)")


def _load_pickled_module(path: Path, trust: bool) -> nn.Sequential:
    if not trust:
        _refuse_untrusted(path, "a pickled PyTorch object (torch.save(model)), not weights")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a class that cannot be imported here, a damaged file
        raise CheckpointError(f"{path}: the pickled module cannot be loaded ({_one_line(exc)}); the classes it "
                              "names must be importable here, or save its state_dict and give --arch") from exc
    if not isinstance(obj, nn.Module):
        raise CheckpointError(f"{path} holds a pickled {type(obj).__name__}, not a PyTorch module")
    return _as_sequential(obj, path)


def _load_torchscript(path: Path, trust: bool) -> nn.Sequential:
    if not trust:
        _refuse_untrusted(path, "a TorchScript file")
    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: the TorchScript file cannot be loaded ({_one_line(exc)})") from exc
    return _as_sequential(scripted, path)


def _rebuild(module: nn.Module) -> nn.Module:
    """A plain copy of a (scripted) module from its type name, constructor arguments and tensors."""
    name = getattr(module, "original_name", type(module).__name__)
    if name == "Sequential":
        return nn.Sequential(*[_rebuild(c) for c in module.children()])
    cls = getattr(nn, name, None)
    if cls is None or (name not in _ARGS and name not in _PLAIN):
        raise CheckpointError(f"layer {name} is not one buckbi exports (supported: Sequential, "
                              f"{', '.join([*_ARGS, *_PLAIN])})")
    if name == "Linear":
        w = module.weight
        copy = nn.Linear(w.shape[1], w.shape[0], bias=getattr(module, "bias", None) is not None)
    else:
        copy = cls(**(_ARGS[name](module) if name in _ARGS else {}))
    copy.load_state_dict({k: v.detach().clone() for k, v in module.state_dict().items()})
    return copy


def _as_sequential(module: nn.Module, path: Path) -> nn.Sequential:
    """The module as a plain Sequential, checked to compute what the module computes."""
    module = module.eval()
    try:
        if getattr(module, "original_name", type(module).__name__) == "Sequential":
            seq = _rebuild(module)
        else:  # e.g. the seed's Actor: a module holding its layers (one Sequential, or Linear/activation children)
            kids = list(module.children())
            inner = kids[0] if len(kids) == 1 and getattr(kids[0], "original_name",
                                                           type(kids[0]).__name__) == "Sequential" else None
            seq = _rebuild(inner) if inner is not None else nn.Sequential(*[_rebuild(c) for c in kids])
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except Exception as err:
        raise CheckpointError(f"{path}: its layers cannot be read as a Sequential ({_one_line(err)})") from err
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    if not linears:
        raise CheckpointError(f"{path}: no Linear layer found in the module")
    x = torch.rand(64, linears[0].in_features, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        try:
            same = torch.allclose(module(x), seq.eval()(x), rtol=1e-5, atol=1e-6)
        except Exception:
            same = False
    if not same:
        raise CheckpointError(f"{path}: its forward() is not the sequence of its layers (buckbi exports "
                              "feed-forward Sequentials); save the Sequential itself, or its state_dict with --arch")
    return seq


# --- messages -------------------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _one_line(err: BaseException) -> str:
    """An exception as one clean line: no terminal codes, the first sentence of its first line."""
    text = _ANSI.sub("", str(err)).strip()
    text = text.split("WeightsUnpickler error:", 1)[-1]  # torch's own cause, not its advice to unpickle
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _earlier_checkpoints(path: Path) -> str:
    """How to go on from an earlier per-episode checkpoint of the same training folder."""
    eps = sorted((int(m.group(1)), p) for p in path.parent.glob("actor_ep*.pth")
                 if (m := re.fullmatch(r"actor_ep(\d+)\.pth", p.name)) and p != path)
    if not eps:
        return ("No earlier per-episode checkpoint (actor_epN.pth) is beside it: start fresh (buckbi train --fresh) "
                "or give another checkpoint.")
    n, newest = eps[-1]
    return (f"Use an earlier per-episode checkpoint (actor_epN.pth; the newest here: {newest.name}): evaluate it "
            f"with --actor {newest}, or resume training from it with: cp {newest} {path.parent / 'actor_final.pth'} "
            f"&& buckbi train --workdir {path.parent} --start-episode {n}")


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("model."): v for k, v in state.items()}
