"""Which SPICE backend runs a netlist: an explicit choice, ``$BUCKBI_SIMULATOR``, or ``auto``."""
from __future__ import annotations

import os

from .backend import Backend
from .ltspice import LTspiceBackend
from .ngspice import NgspiceBackend

from .names import ENV_VAR, FAST  # noqa: F401 (part of this module's interface)


def available_backends() -> dict[str, type[Backend]]:
    return {"ngspice": NgspiceBackend, "ltspice": LTspiceBackend}


def simulator_name(choice: str | Backend | None) -> str:
    """The lower-case name a choice stands for (``$BUCKBI_SIMULATOR`` when None, else ``auto``)."""
    if isinstance(choice, Backend):
        return choice.name
    return (choice or os.environ.get(ENV_VAR) or "auto").strip().lower()


def get_simulator(choice: str | Backend | None = None) -> Backend:
    """Pick a SPICE backend: an explicit choice, else ``$BUCKBI_SIMULATOR``, else ``auto``.

    ``auto`` takes LTspice when spicelib finds it installed, ngspice otherwise.
    """
    if isinstance(choice, Backend):
        return choice
    name = simulator_name(choice)
    backends = available_backends()
    if name == "auto":
        lt = backends["ltspice"]()
        return lt if lt.is_available() else backends["ngspice"]()
    if name == FAST:
        raise ValueError(f"'{FAST}' is the fast episode simulator, not a SPICE backend: it runs gym episodes "
                         "(run_episode(s), train, evaluate), not arbitrary netlists; choose ngspice or ltspice here")
    if name not in backends:
        raise ValueError(f"unknown simulator {name!r}; choose one of: auto, {', '.join(backends)}, {FAST} "
                         f"(set by --simulator or ${ENV_VAR})")
    return backends[name]()
