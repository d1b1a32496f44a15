"""A network given as a SPICE subcircuit file (from any exporter), used as the actor without a PyTorch model."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..converters.buck.converter import ConverterError, recorded_in_netlist
from ..sim import Backend, NgspiceBackend

SUBCKT = "ActorSubckt"
PORTS = 20  # NNin1..NNin19, NNout1: the seed's X99 line
PUBLISHED = Path(__file__).resolve().parents[1] / "data" / "reference_actor.sp"

_SUBCKT_LINE = re.compile(r"^\s*\.subckt\s+(\S+)((?:\s+[^\s=]+)*)\s*(?:params:.*)?$", re.IGNORECASE)
_LTSPICE_IF = re.compile(r"\bif\s*\(", re.IGNORECASE)  # LTspice's if(c, a, b); ngspice writes (c) ? a : b
_LTSPICE_ONLY = re.compile(r"^\s*\.machine\b", re.IGNORECASE | re.MULTILINE)


class NetlistActorError(ValueError):
    """A subcircuit file cannot serve as the gym's actor."""


def _logical_lines(text: str) -> list[str]:
    """SPICE lines with '+' continuations joined and comments dropped."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("*"):
            continue
        if line.startswith("+") and out:
            out[-1] += " " + line[1:].strip()
        else:
            out.append(line)
    return out


@dataclass(frozen=True)
class NetlistActor:
    """An exported ``.subckt ActorSubckt NNin1 .. NNin19 NNout1``, run in the gyms exactly as written."""

    path: Path
    text: str
    dialect: str  # "ltspice" (uses if()), "ngspice" (ternary) or "portable" (neither)
    trained_for: dict | None = None  # the converter its header records (buckbi export); None: not known

    @classmethod
    def load(cls, path: str | Path) -> "NetlistActor":
        """Read and check a subcircuit file; raises NetlistActorError naming what is wrong and the fix."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="strict")
        except FileNotFoundError:
            raise NetlistActorError(f"netlist {path} does not exist") from None
        except (UnicodeDecodeError, OSError) as err:
            raise NetlistActorError(f"netlist {path} cannot be read as UTF-8 text ({err}); LTspice may have "
                                    "saved it as UTF-16: re-save it as UTF-8") from None
        found = {}
        for line in _logical_lines(text):
            m = _SUBCKT_LINE.match(line)
            if m:
                found[m.group(1)] = m.group(2).split()
        match = next((ports for name, ports in found.items() if name.lower() == SUBCKT.lower()), None)
        if match is None:
            have = ", ".join(found) or "none"
            raise NetlistActorError(f"netlist {path} has no '.subckt {SUBCKT}' (subcircuits found: {have}); the gyms "
                                    f"instantiate 'X99 NNin1 ... NNin19 NNout1 {SUBCKT}': export or rename it so")
        if _LTSPICE_ONLY.search(text):
            raise NetlistActorError(f"netlist {path} holds recurrent cells as LTspice .machine blocks (the reference "
                                    "exporter's), which ngspice cannot run and the gyms do not clock as a netlist: "
                                    f"import it (python -m buckbi import {path} --out actor.pth) and run --actor "
                                    "actor.pth (buckbi's cells, same timing)")
        if len(match) != PORTS:
            raise NetlistActorError(f"netlist {path}: .subckt {SUBCKT} has {len(match)} ports, the gyms connect "
                                    f"{PORTS} (NNin1..NNin19 inputs, then NNout1)")
        dialect = "ltspice" if _LTSPICE_IF.search(text) else ("ngspice" if "?" in text else "portable")
        try:
            recorded = recorded_in_netlist(text, f"netlist {path}")
        except ConverterError as err:
            raise NetlistActorError(str(err)) from None
        return cls(path.resolve(), text, dialect, recorded)

    @property
    def name(self) -> str:
        return self.path.name

    def write(self, dest: str | Path) -> None:
        """Put the file, unchanged, where the episode's parameter file includes it."""
        Path(dest).write_text(self.text, encoding="utf-8")

    def backend_for(self, backend: Backend) -> Backend:
        """The simulator mode that reads this file as written (ngspice's LTspice mode for LTspice syntax)."""
        if self.dialect == "portable" or backend.netlist_dialect == self.dialect:
            return backend
        if isinstance(backend, NgspiceBackend):  # the ternary reads in every ngspice mode; if() in LTspice mode
            return backend if self.dialect == "ngspice" else NgspiceBackend(backend.executable, compatibility="ltpsa")
        raise NetlistActorError(f"netlist {self.path} is written for {self.dialect}, which {backend.name} does not "
                                f"read; run it with --simulator {self.dialect}")


def published_actor() -> NetlistActor:
    """The reference's published trained actor (kosokno/pytorch2ltspice, MIT), as its exporter wrote it."""
    return NetlistActor.load(PUBLISHED)
