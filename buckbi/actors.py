"""Where an actor comes from: a checkpoint, a subcircuit file from any exporter, or a shipped network."""
from __future__ import annotations

from pathlib import Path

from .episode import Actor
from .netlist_actor import NetlistActor, published_actor

PUBLISHED = "published"  # the reference's published trained actor (BUCK_VM_nn.sp), shipped with buckbi
PRETRAINED = "pretrained"  # buckbi's own actor, trained on the fast simulator (see README)
PRETRAINED_FILE = Path(__file__).resolve().parent / "data" / "pretrained_actor.pth"


def pretrained_actor():
    """buckbi's shipped actor (a checkpoint with its architecture), in eval mode."""
    from .checkpoint import load_checkpoint
    if not PRETRAINED_FILE.exists():
        raise FileNotFoundError(f"the pretrained actor is missing from this installation ({PRETRAINED_FILE}); "
                                "reinstall buckbi or pass --actor CHECKPOINT")
    model, _ = load_checkpoint(PRETRAINED_FILE)
    return model.eval()


SHIPPED = {PUBLISHED: published_actor, PRETRAINED: pretrained_actor}


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
