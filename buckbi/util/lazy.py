"""Package attributes that import their module on first use (PEP 562): importing a package stays cheap."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(package: str, where: dict[str, tuple[str, ...]]) -> tuple[Callable[[str], Any], list[str]]:
    """``__getattr__`` and ``__all__`` for ``package``: each name of ``where[module]`` is ``module``'s (relative)."""
    owner = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(owner[name], package), name)
        importlib.import_module(package).__dict__[name] = value
        return value

    return __getattr__, list(owner)
