"""A subcircuit file as the actor: parsing, dialect and the errors users get (no simulator needed)."""
from __future__ import annotations

import pytest
import torch

from buckbi.nn.actors import resolve_actor
from buckbi.export import export_model
from buckbi.nn.netlist_actor import NetlistActor, NetlistActorError, published_actor
from buckbi.sim import NgspiceBackend

NAMES = dict(subckt_name="ActorSubckt", input_names=[f"NNin{i}" for i in range(1, 20)], output_names=["NNout1"])


def test_the_published_actor_is_shipped_unchanged_and_reads_as_ltspice():
    actor = published_actor()
    assert actor.dialect == "ltspice"
    assert "B_ACT1_1 L_ACT1_1 0 V=(IF(V(L1_1)>0,V(L1_1),0))" in actor.text
    assert resolve_actor(netlist="published").text == actor.text  # --actor published: the imported model


@pytest.mark.parametrize("dialect", ["ngspice", "ltspice"])
def test_buckbi_exports_load_with_their_dialect(tmp_path, dialect):
    model = torch.nn.Sequential(torch.nn.Linear(19, 4), torch.nn.Softplus(), torch.nn.Linear(4, 1))
    export_model(model, tmp_path / "a.sp", dialect=dialect, **NAMES)
    assert NetlistActor.load(tmp_path / "a.sp").dialect == dialect


def test_an_ltspice_file_runs_in_ngspice_lt_mode():
    backend = published_actor().backend_for(NgspiceBackend())
    assert isinstance(backend, NgspiceBackend) and backend.compatibility == "ltpsa"


@pytest.mark.parametrize("text,message", [
    (".subckt Other a b\nR1 a b 1\n.ends\n", "no '.subckt ActorSubckt' (subcircuits found: Other)"),
    ("* empty\n", "subcircuits found: none"),
    (".SUBCKT ActorSubckt " + " ".join(f"NNIN{i}" for i in range(1, 20)) + "\n.ends\n", "has 19 ports"),
    (".subckt ActorSubckt " + " ".join(f"n{i}" for i in range(1, 18)) + "\n+ n18 n19 out\n.machine\n.endmachine\n"
     ".ends\n", ".machine"),
])
def test_bad_netlists_are_refused_with_the_reason(tmp_path, text, message):
    (tmp_path / "n.sp").write_text(text)
    with pytest.raises(NetlistActorError, match="n.sp") as err:
        NetlistActor.load(tmp_path / "n.sp")
    assert message in str(err.value)


def test_continuation_lines_count_as_ports(tmp_path):
    ports = [f"NNIN{i}" for i in range(1, 20)] + ["NNOUT1"]
    (tmp_path / "n.sp").write_text(".subckt ActorSubckt " + " ".join(ports[:10]) + "\n+ " + " ".join(ports[10:])
                                   + "\nR1 NNIN1 NNOUT1 1\n.ends ActorSubckt\n")
    assert NetlistActor.load(tmp_path / "n.sp").dialect == "portable"


def test_missing_and_utf16_files_say_what_to_do(tmp_path):
    with pytest.raises(NetlistActorError, match="does not exist"):
        NetlistActor.load(tmp_path / "none.sp")
    (tmp_path / "u.sp").write_bytes(".subckt ActorSubckt a\n.ends\n".encode("utf-16"))
    with pytest.raises(NetlistActorError, match="UTF-16"):
        NetlistActor.load(tmp_path / "u.sp")


def test_resolve_actor_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        resolve_actor()
    with pytest.raises(ValueError, match="exactly one"):
        resolve_actor("a.pth", "b.sp")
