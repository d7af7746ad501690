"""Algorithm registry: names mapped to lazily imported ``"module:Class"`` entry points.

Importing the registry imports no algorithm; :func:`get_algorithm` imports one on first use.
Register your own with :func:`register_algorithm` (a class or a ``"module:Class"`` string) and
``fugu train ENV --algo NAME`` trains it.

Example:
    >>> "ppo" in algorithm_names()
    True
    >>> get_algorithm("ppo").collection
    'rollout'
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from fugu.core.errors import APIUsageError

__all__ = ["algorithm_names", "get_algorithm", "register_algorithm", "unregister_algorithm"]

_BUILTIN: dict[str, str] = {
    "ppo": "fugu.algos.ppo:PPO",
}
_registry: dict[str, Any] = dict(_BUILTIN)


def register_algorithm(name: str, entry_point: str | type[Any], *, replace: bool = False) -> None:
    """Register an algorithm class (or its ``"module:Class"`` path) under ``name``.

    Raises:
        APIUsageError: ``name`` is taken (pass ``replace=True``) or not a valid section name.
    """
    if not name.isidentifier() or name != name.lower():
        raise APIUsageError(f"algorithm names are lowercase identifiers, got {name!r}")
    if name in _registry and not replace and _registry[name] != entry_point:
        raise APIUsageError(f"algorithm {name!r} is already registered (pass replace=True)")
    _registry[name] = entry_point


def unregister_algorithm(name: str) -> None:
    """Remove a registered algorithm (built-ins come back only by registering them again)."""
    _registry.pop(name, None)


def algorithm_names() -> list[str]:
    """The registered algorithm names, sorted."""
    return sorted(_registry)


def get_algorithm(name: str) -> Any:
    """The algorithm class registered as ``name`` (imported on first use).

    Raises:
        APIUsageError: No such algorithm (the message suggests the closest names).
    """
    if name not in _registry:
        close = difflib.get_close_matches(name, list(_registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise APIUsageError(
            f"unknown algorithm {name!r}{hint} registered: {', '.join(algorithm_names())}"
        )
    entry = _registry[name]
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), attr)
        _registry[name] = entry
    return entry
