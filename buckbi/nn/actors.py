"""Where an actor comes from: a checkpoint, a subcircuit file from any exporter, or a shipped network."""
from __future__ import annotations

from pathlib import Path

from ..episodes.run import Actor
from .netlist_actor import NetlistActor, published_actor

PUBLISHED = "published"  # the reference's published trained actor (BUCK_VM_nn.sp), shipped with buckbi
PRETRAINED = "pretrained"  # buckbi's own actor: the signoff recipe on the fast simulator (README "Sign-off training")
SEED_PRETRAINED = "seed-pretrained"  # the one shipped before it: the seed's schedule on the fast simulator
DATA = Path(__file__).resolve().parents[1] / "data"
PRETRAINED_FILE = DATA / "pretrained_actor.pth"
SEED_PRETRAINED_FILE = DATA / "seed_pretrained_actor.pth"


def _shipped_checkpoint(path: Path):
    from .checkpoint import load_checkpoint
    if not path.exists():
        raise FileNotFoundError(f"a shipped actor is missing from this installation ({path}); reinstall buckbi or "
                                "pass --actor CHECKPOINT")
    model, _ = load_checkpoint(path)
    return model.eval()


def pretrained_actor():
    """buckbi's shipped actor (a checkpoint with its architecture), in eval mode."""
    return _shipped_checkpoint(PRETRAINED_FILE)


def seed_pretrained_actor():
    """The actor shipped before the signoff recipe (the seed's schedule), kept with its figures, in eval mode."""
    return _shipped_checkpoint(SEED_PRETRAINED_FILE)


def published_model():
    """The reference's published actor imported as a PyTorch model (equal to its file: buckbi.importers.subckt)."""
    from ..importers.subckt import import_network
    from .netlist_actor import PUBLISHED as PUBLISHED_FILE
    return import_network(PUBLISHED_FILE)


SHIPPED = {PUBLISHED: published_model, PRETRAINED: pretrained_actor, SEED_PRETRAINED: seed_pretrained_actor}  # --actor NAME: PyTorch models
SHIPPED_NETLISTS = {PUBLISHED: published_actor}  # --netlist NAME: the file, run as it is


def resolve_actor(actor: str | Path | None = None, netlist: str | Path | None = None, arch: str | None = None,
                  trust_pickle: bool = False) -> Actor:
    """``actor``: a checkpoint path (read by :func:`buckbi.nn.checkpoint.load_checkpoint` with ``arch`` and
    ``trust_pickle``) or a shipped name (``published`` is the reference's file imported as a PyTorch model, so it
    runs on the fast simulator and as the XSPICE element); ``netlist``: a ``.subckt ActorSubckt`` file
    (``published``: the reference's file itself)."""
    if (actor is None) == (netlist is None):
        raise ValueError("give exactly one of an actor checkpoint (--actor) and a subcircuit file (--netlist)")
    name = str(actor if actor is not None else netlist)
    if netlist is not None and name in SHIPPED_NETLISTS:
        return SHIPPED_NETLISTS[name]()
    if actor is not None and name in SHIPPED:
        return SHIPPED[name]()
    if netlist is not None:
        return NetlistActor.load(netlist)
    from .checkpoint import check_actor_shape, load_checkpoint
    model, meta = load_checkpoint(actor, arch=arch, trust_pickle=trust_pickle)
    check_actor_shape(model, actor)
    if meta.get("converter"):
        model.trained_for = dict(meta["converter"])  # what trained_for() reads (buckbi checkpoints record it)
    return model.eval()


def trained_for(actor: Actor) -> dict | None:
    """The converter a network was trained for (``Converter.record()``): recorded in buckbi's checkpoints since
    converters are files; a PyTorch network without a record is the reference buck's (every network before was);
    a netlist's is what its header records (buckbi's export of another converter's network), else unknown (None)."""
    from ..converters.buck.converter import reference
    if isinstance(actor, NetlistActor):
        return actor.trained_for
    return getattr(actor, "trained_for", None) or reference().record()
