"""Where an actor comes from: a checkpoint, a subcircuit file from any exporter, or a shipped network."""
from __future__ import annotations

from pathlib import Path

from .episode import Actor
from .netlist_actor import NetlistActor, published_actor

PUBLISHED = "published"  # the reference's published trained actor (BUCK_VM_nn.sp), shipped with buckbi
SHIPPED = {PUBLISHED: published_actor}


def resolve_actor(actor: str | Path | None = None, netlist: str | Path | None = None) -> Actor:
    """``actor``: a checkpoint path or a shipped name; ``netlist``: a ``.subckt ActorSubckt`` file (or a name)."""
    if (actor is None) == (netlist is None):
        raise ValueError("give exactly one of an actor checkpoint (--actor) and a subcircuit file (--netlist)")
    name = str(actor if actor is not None else netlist)
    if name in SHIPPED:
        return SHIPPED[name]()
    if netlist is not None:
        return NetlistActor.load(netlist)
    from .checkpoint import load_checkpoint
    model, _ = load_checkpoint(actor)
    return model.eval()
