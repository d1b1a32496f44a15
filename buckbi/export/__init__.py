"""PyTorch ``nn.Sequential`` to SPICE ``.subckt`` exporter (ngspice and LTspice dialects)."""
from __future__ import annotations

import os

from torch import nn

from ..util.fsutil import atomic_write_text

from .graph import (SUPPORTED, ExportError, NonFiniteWeightError, TrainingModeError,
                    UnsupportedLayerError, WidthMismatchError, has_state, lower)
from .netlist import DIALECTS, STRUCTURES, render
from .reference import step_reference

__all__ = [
    "export_model", "export_model_to_ltspice", "step_reference", "SUPPORTED", "ExportError",
    "UnsupportedLayerError", "NonFiniteWeightError", "WidthMismatchError", "TrainingModeError",
]


def _names(given: list[str] | None, prefix: str, n: int, what: str) -> list[str]:
    if given is None:
        return [f"{prefix}{i}" for i in range(1, n + 1)]
    names = [str(g) for g in given]
    if len(names) != n:
        raise WidthMismatchError(f"{what} has {len(names)} names but the model has {n} {what}")
    bad = [g for g in names if not g or any(ch.isspace() or ch in "(),=" for ch in g)]
    if bad:
        raise ExportError(f"invalid SPICE node names in {what}: {bad}")
    return names


def export_model(model: nn.Module, path: str | os.PathLike | None = None, *, subckt_name: str = "ActorSubckt",
                 dialect: str = "ngspice", input_names: list[str] | None = None,
                 output_names: list[str] | None = None, structure: str = "fast",
                 codemodel: str | os.PathLike | None = None, notes: tuple[str, ...] = ()) -> str:
    """Export ``model`` as a SPICE subcircuit; returns the text and writes it to ``path`` when given.

    Ports are NNIN1..NNINn, NNOUT1..NNOUTm, then CLK when the net holds recurrent state.
    ``structure="fast"`` builds each weighted sum from linear VCCS into a 1-ohm node (fastest to
    simulate); ``"plain"`` uses one behavioural source per sum (easier to read while debugging);
    ``"xspice"`` (ngspice only, feed-forward networks) is one element of buckbi's XSPICE code model, loaded from
    ``codemodel`` (required: e.g. ``buckbi.xspice.require_codemodel()``, what ``python -m buckbi.xspice build``
    installed), ~5x faster in a loop. ``notes``: comment lines added to the header (one line each, no newline).
    """
    if dialect not in DIALECTS:
        raise ExportError(f"unknown dialect {dialect!r}; use one of {DIALECTS}")
    if structure not in STRUCTURES:
        raise ExportError(f"unknown structure {structure!r}; use one of {STRUCTURES}")
    if not subckt_name or any(ch.isspace() for ch in subckt_name):
        raise ExportError(f"invalid subcircuit name {subckt_name!r}")
    if structure == "xspice" and dialect != "ngspice":
        raise ExportError(f"structure 'xspice' is an ngspice code model; the {dialect} dialect needs "
                          "structure 'fast' or 'plain'")
    n_given = len(input_names) if input_names is not None else None
    ops, n_in, n_out = lower(model, n_given)
    if structure == "xspice":
        if has_state(ops):
            raise ExportError("structure 'xspice' runs feed-forward networks only; this one holds recurrent "
                              "state: export it with structure 'fast'")
        if codemodel is None:
            raise ExportError("structure 'xspice' needs the code model's path: codemodel=buckbi.xspice."
                              "require_codemodel() (built by 'python -m buckbi.xspice build')")
    if any("\n" in n or "\r" in n for n in notes):
        raise ExportError("a header note must be one line")
    ins = _names(input_names, "NNIN", n_in, "inputs")
    outs = _names(output_names, "NNOUT", n_out, "outputs")
    text = render(ops, n_in, n_out, subckt_name=subckt_name, dialect=dialect, structure=structure,
                  input_names=ins, output_names=outs, clocked=has_state(ops), codemodel=codemodel, notes=tuple(notes))
    if path is not None:
        atomic_write_text(path, text)
    return text


def export_model_to_ltspice(model: nn.Module, filename: str | os.PathLike, subckt_name: str = "ActorSubckt",
                            verbose: bool = False) -> str:
    """The seed notebook's call: LTspice dialect, written to ``filename``."""
    text = export_model(model, filename, subckt_name=subckt_name, dialect="ltspice")
    if verbose:
        print(f"exported {subckt_name} to {filename} ({text.count(chr(10))} lines)")
    return text

