"""The ``[shield]`` config section and the factory that wraps a run's env shards with it.

``mode = "preemptive"``, ``"postposed"`` or ``"monitor"`` wraps every env shard in a
:class:`~fugu.safety.shield.ShieldedVecEnv` (``"none"``, the default, wraps nothing). The
specification is ``spec``: ``"auto"`` (the built-in one registered for the env id, see
:data:`BUILTIN_SPECS`), ``"properties:FILE.toml"`` (the ``never_action`` properties of a
property file, :mod:`fugu.safety.properties`) or ``"package.module:factory"`` (called with the
env's kwargs it accepts, returning a :class:`~fugu.safety.spec.SafetySpec`). From the command
line::

    fugu train water-tank-v1 --shield preemptive

Example:
    >>> import fugu
    >>> envs = wrap_envs(ShieldConfig(mode="postposed"), [fugu.make("water-tank-v1")],
    ...                  "water-tank-v1")
    >>> type(envs[0]).__name__, envs[0].mode
    ('ShieldedVecEnv', 'postposed')
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fugu.core.errors import APIUsageError
from fugu.safety.shield import SHIELD_MODES, ShieldedVecEnv
from fugu.safety.spec import SafetySpec

__all__ = ["BUILTIN_SPECS", "ShieldConfig", "make_spec", "wrap_envs"]

BUILTIN_SPECS: dict[str, str] = {
    "water-tank-v1": "fugu.safety.water_tank:water_tank_spec",
}
"""The specification ``spec = "auto"`` uses for each env id (``module:factory``)."""


@dataclass(frozen=True)
class ShieldConfig:
    """Whether and how to shield the env's actions (see :mod:`fugu.safety.shield`)."""

    mode: str = "none"
    """``"none"``, ``"preemptive"`` (mask unsafe actions), ``"postposed"`` (replace them) or
    ``"monitor"`` (only count them)."""
    spec: str = "auto"
    """``"auto"`` (the env's built-in spec), ``"properties:FILE.toml"`` or
    ``"package.module:factory"``."""
    penalty: float = 0.0
    """Reward subtracted on a step whose action a post-posed shield replaced."""

    def __post_init__(self) -> None:
        if self.mode != "none" and self.mode not in SHIELD_MODES:
            raise APIUsageError(
                f"shield.mode must be 'none' or one of {SHIELD_MODES}, got {self.mode!r}"
            )


def _call_with_accepted(factory: Any, kwargs: Mapping[str, Any]) -> Any:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return factory(**kwargs)
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return factory(**kwargs)
    return factory(**{k: v for k, v in kwargs.items() if k in parameters})


def make_spec(
    spec: str, env_id: str, env_kwargs: Mapping[str, Any] | None = None, num_actions: int = 0
) -> SafetySpec:
    """The :class:`~fugu.safety.spec.SafetySpec` that ``spec`` names for ``env_id``."""
    kwargs = dict(env_kwargs or {})
    if spec.startswith("properties:"):
        from fugu.safety.properties import load_properties, property_spec

        return property_spec(load_properties(spec.partition(":")[2]), num_actions)
    if spec == "auto":
        if env_id not in BUILTIN_SPECS:
            raise APIUsageError(
                f"no built-in safety spec for {env_id!r} (built in: {sorted(BUILTIN_SPECS)}); "
                "pass shield.spec = 'properties:FILE.toml' or 'package.module:factory'"
            )
        spec = BUILTIN_SPECS[env_id]
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise APIUsageError(
            f"shield.spec must be 'auto', 'properties:FILE' or 'module:attr', got {spec!r}"
        )
    factory = getattr(importlib.import_module(module_name), attr)
    built = _call_with_accepted(factory, kwargs)
    if not isinstance(built, SafetySpec):
        raise APIUsageError(f"{spec} returned {type(built).__name__}, not a SafetySpec")
    return built


def wrap_envs(
    config: ShieldConfig,
    envs: Sequence[Any],
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[Any]:
    """``envs`` each wrapped in a shield of ``config`` (unchanged for ``mode = "none"``)."""
    if config.mode == "none":
        return list(envs)
    wrapped = []
    for env in envs:
        n = int(getattr(env.single_action_space, "n", 0))
        spec = make_spec(config.spec, env_id, env_kwargs, n)
        wrapped.append(ShieldedVecEnv(env, spec, config.mode, config.penalty))
    return wrapped
