"""Algorithm registry: names mapped to lazily imported ``"module:Class"`` entry points.

Importing the registry imports no algorithm; :func:`get_algorithm` imports one on first use.
Register your own with :func:`register_algorithm` (a class or a ``"module:Class"`` string) and
``fugu train ENV --algo NAME`` trains it.

Installed packages advertise algorithms under the entry-point group ``fugu.algorithms``
(:data:`ENTRY_POINT_GROUP`; the entry point's name is the algorithm's name, its value
``"module:Class"``). They are found lazily, by :func:`algorithm_names` and on the first lookup
of an unknown name, and imported only when used, so the CLI trains them with no code in fugu.
A name registered in Python (or built in) wins over an entry point of the same name.

Example:
    >>> "ppo" in algorithm_names()
    True
    >>> get_algorithm("ppo").collection
    'rollout'
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from typing import Any

from fugu.core.errors import APIUsageError, MissingDependencyError

__all__ = [
    "ENTRY_POINT_GROUP",
    "algorithm_names",
    "discover_algorithms",
    "get_algorithm",
    "register_algorithm",
    "unregister_algorithm",
]

ENTRY_POINT_GROUP = "fugu.algorithms"
"""The entry-point group of algorithms advertised by installed packages."""

_BUILTIN: dict[str, str] = {
    "ppo": "fugu.algos.ppo:PPO",
    "dqn": "fugu.algos.dqn:DQN",
    "sac": "fugu.algos.sac:SAC",
    "td3": "fugu.algos.td3:TD3",
    "ppo_rnd": "fugu.algos.ppo_rnd:PPORND",
    "grpo": "fugu.algos.grpo:GRPO",
    "dapo": "fugu.algos.grpo:DAPO",
    "mappo": "fugu.algos.mappo:MAPPO",
    "ippo": "fugu.algos.mappo:IPPO",
    "ppo_lag": "fugu.algos.ppo_lag:PPOLag",
    "cpo": "fugu.algos.cpo:CPO",
    "dt": "fugu.algos.dt:DT",
    "bc": "fugu.algos.bc:BC",
    "dreamer": "fugu.algos.dreamer:Dreamer",
}
_registry: dict[str, Any] = dict(_BUILTIN)
_discovered = False
"""Whether the installed packages' entry points have been read (done once, lazily)."""


def _valid_name(name: str) -> bool:
    return name.isidentifier() and name == name.lower()


def register_algorithm(name: str, entry_point: str | type[Any], *, replace: bool = False) -> None:
    """Register an algorithm class (or its ``"module:Class"`` path) under ``name``.

    Raises:
        APIUsageError: ``name`` is taken (pass ``replace=True``) or not a valid section name.
    """
    if not _valid_name(name):
        raise APIUsageError(f"algorithm names are lowercase identifiers, got {name!r}")
    if name in _registry and not replace and _registry[name] != entry_point:
        raise APIUsageError(f"algorithm {name!r} is already registered (pass replace=True)")
    _registry[name] = entry_point


def unregister_algorithm(name: str) -> None:
    """Remove a registered algorithm (built-ins and discovered ones come back only by
    registering them again, or for discovered ones by :func:`discover_algorithms`)."""
    _registry.pop(name, None)


def discover_algorithms() -> list[str]:
    """Register the algorithms that installed packages advertise (group ``fugu.algorithms``).

    Runs once by itself (the first :func:`algorithm_names` or lookup of an unknown name); call
    it again after installing a package into a running process. Names already registered
    keep their registration, and entry points whose name is not a lowercase identifier (not
    a valid config section) are skipped. Nothing is imported until :func:`get_algorithm`.

    Returns:
        The names it added, sorted.
    """
    global _discovered
    _discovered = True
    added = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if _valid_name(entry.name) and entry.name not in _registry:
            _registry[entry.name] = entry.value.partition("[")[0].strip()  # drop [extras]
            added.append(entry.name)
    return sorted(added)


def algorithm_names() -> list[str]:
    """The registered algorithm names (entry-point ones included), sorted."""
    if not _discovered:
        discover_algorithms()
    return sorted(_registry)


def get_algorithm(name: str) -> Any:
    """The algorithm class registered as ``name`` (imported on first use).

    Raises:
        APIUsageError: No such algorithm (the message suggests the closest names), or its
            ``"module:Class"`` entry point cannot be imported.
    """
    if name not in _registry and not _discovered:
        discover_algorithms()
    if name not in _registry:
        close = difflib.get_close_matches(name, list(_registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise APIUsageError(
            f"unknown algorithm {name!r}{hint} (registered: {', '.join(algorithm_names())})"
        )
    entry = _registry[name]
    if isinstance(entry, str):
        entry = _load(name, entry)
        _registry[name] = entry
    return entry


def _load(name: str, entry_point: str) -> Any:
    """Import ``"module:Class"`` (a dotted attribute path after the colon is followed too)."""
    module_name, _, attrs = entry_point.partition(":")
    if not module_name.strip() or not attrs.strip():
        raise APIUsageError(
            f"algorithm {name!r} is registered as {entry_point!r}; expected 'module:Class'"
        )
    try:
        target: Any = importlib.import_module(module_name.strip())
        for attr in attrs.strip().split("."):
            target = getattr(target, attr)
    except MissingDependencyError:
        raise  # already names the extra to install
    except (ImportError, AttributeError) as error:
        raise APIUsageError(
            f"algorithm {name!r} is registered as {entry_point!r}, which cannot be imported: "
            f"{error}"
        ) from error
    return target
