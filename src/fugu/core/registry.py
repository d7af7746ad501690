"""Env registry: versioned ids (``name-vN``) mapped to lazily imported entry points.

fugu's built-in envs are listed here as ``"module:attr"`` strings, so importing the registry
imports no env. Ids not registered with fugu fall back to Gymnasium's registry, wrapped by
:mod:`fugu.core.emulation`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fugu.core.errors import APIUsageError, UnknownEnvError

__all__ = ["EnvSpec", "Registry", "default_registry", "make", "register", "registered_ids"]

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*-v\d+$")

# Built-in envs of fugu.envs ("ocean"), imported only when made.
_BUILTIN: dict[str, str] = {
    "cartpole-v1": "fugu.envs.cartpole:CartPole",
    "cartpole-continuous-v1": "fugu.envs.cartpole:CartPoleContinuous",
    "pendulum-v1": "fugu.envs.pendulum:Pendulum",
    "probe-constant-v1": "fugu.envs.probes:ProbeConstant",
    "probe-observation-v1": "fugu.envs.probes:ProbeObservation",
    "probe-delayed-v1": "fugu.envs.probes:ProbeDelayed",
    "probe-memory-v1": "fugu.envs.probes:ProbeMemory",
    "probe-multiagent-v1": "fugu.envs.probes:ProbeMultiagent",
    "probe-continuous-v1": "fugu.envs.probes:ProbeContinuous",
    "snake-v1": "fugu.envs.snake:Snake",
    "connect4-v1": "fugu.envs.connect4:Connect4",
    "breakout-v1": "fugu.envs.breakout:Breakout",
    "bitflip-v1": "fugu.envs.bitflip:BitFlip",
    "pointgoal-v1": "fugu.envs.pointgoal:PointGoal",
    "hazard-nav-v1": "fugu.envs.hazard_nav:HazardNav",
    "deep-sea-v1": "fugu.envs.deep_sea:DeepSea",
    "key-door-v1": "fugu.envs.key_door:KeyDoor",
    "simple-spread-v1": "fugu.envs.simple_spread:SimpleSpread",
    "safe-hopper-velocity-v1": "fugu.envs.mujoco.safe:SafeHopperVelocity",
    "safe-halfcheetah-velocity-v1": "fugu.envs.mujoco.safe:SafeHalfCheetahVelocity",
    "cartpole-swingup-v1": "fugu.envs.cartpole_swingup:CartPoleSwingup",
    "water-tank-v1": "fugu.envs.water_tank:WaterTank",
    "hopper-v1": "fugu.envs.mujoco:Hopper",
    "halfcheetah-v1": "fugu.envs.mujoco:HalfCheetah",
    "ant-v1": "fugu.envs.mujoco:Ant",
}


@dataclass(frozen=True)
class EnvSpec:
    """A registered env: its id, entry point and default keyword arguments."""

    id: str
    entry_point: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        """Import and return the entry point."""
        if callable(self.entry_point):
            return self.entry_point
        module_name, _, attr = self.entry_point.partition(":")
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]

    def make(self, **kwargs: Any) -> Any:
        """Build the env with the spec's kwargs updated by ``kwargs``.

        ``render_mode`` is accepted by every fugu env: envs that render draw RGB arrays
        (``render_mode="rgb_array"``, also what they report), so a constructor without that
        argument gets the rest and ``"rgb_array"`` is checked.
        """
        constructor = self.load()
        kwargs = {**self.kwargs, **kwargs}
        if "render_mode" in kwargs and not _accepts(constructor, "render_mode"):
            mode = kwargs.pop("render_mode")
            if mode not in (None, "rgb_array"):
                raise APIUsageError(
                    f"{self.id} renders RGB arrays only: pass render_mode='rgb_array' (or none), "
                    f"got {mode!r}"
                )
            env = constructor(**kwargs)
            if mode == "rgb_array" and getattr(env, "render_mode", None) != "rgb_array":
                raise APIUsageError(f"{self.id} cannot render (it has no render(row) method)")
            return env
        return constructor(**kwargs)


class Registry:
    """A table of env ids to :class:`EnvSpec`.

    Example:
        >>> reg = Registry()
        >>> reg.register("constant-v0", "fugu.core.registry:EnvSpec")
        >>> reg.ids()
        ['constant-v0']
        >>> reg.spec("constant-v1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.UnknownEnvError: unknown env id 'constant-v1'; did you mean ...? ...
    """

    def __init__(self, builtin: dict[str, str] | None = None) -> None:
        self._specs: dict[str, EnvSpec] = {}
        for env_id, entry_point in (builtin or {}).items():
            self.register(env_id, entry_point)

    def register(
        self,
        env_id: str,
        entry_point: str | Callable[..., Any],
        *,
        overwrite: bool = False,
        **kwargs: Any,
    ) -> None:
        """Register ``env_id`` (lowercase ``name-vN``) with an entry point and default kwargs."""
        if not _ID_PATTERN.match(env_id):
            raise APIUsageError(
                f"env id {env_id!r} is not versioned: use lowercase 'name-vN', e.g. 'cartpole-v1'"
            )
        if env_id in self._specs and not overwrite:
            raise APIUsageError(f"env id {env_id!r} is already registered; pass overwrite=True")
        self._specs[env_id] = EnvSpec(env_id, entry_point, dict(kwargs))

    def ids(self) -> list[str]:
        """Sorted registered ids."""
        return sorted(self._specs)

    def __contains__(self, env_id: object) -> bool:
        return env_id in self._specs

    def spec(self, env_id: str) -> EnvSpec:
        """The spec of ``env_id``; raises :class:`UnknownEnvError` with suggestions."""
        try:
            return self._specs[env_id]
        except KeyError:
            close = difflib.get_close_matches(env_id, self._specs, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ";"
            raise UnknownEnvError(
                f"unknown env id {env_id!r}{hint} fugu.registered_ids() lists fugu's envs, "
                "and any Gymnasium id works too"
            ) from None

    def make(self, env_id: str, **kwargs: Any) -> Any:
        """Build ``env_id``: a fugu env, or a Gymnasium id wrapped into the fugu contract."""
        if not isinstance(env_id, str):
            raise APIUsageError(
                f"an env id must be a string such as 'cartpole-v1', got {type(env_id).__name__} "
                f"{env_id!r} (fugu.registered_ids() lists fugu's; to use an env object, pass it "
                "to the API that takes envs, e.g. fugu.check_env(env))"
            )
        if env_id in self._specs:
            return self._specs[env_id].make(**kwargs)
        gym_id = _gymnasium_id(env_id)
        if gym_id is None:
            self.spec(env_id)  # raises with suggestions
        assert gym_id is not None  # for mypy: spec() raised above
        from fugu.core.emulation import GymnasiumPufferEnv  # lazy: emulation pulls gymnasium envs

        return GymnasiumPufferEnv.from_id(gym_id, **kwargs)


def _accepts(constructor: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(constructor).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _gymnasium_id(env_id: str) -> str | None:
    import gymnasium

    return env_id if env_id in gymnasium.registry else None


default_registry = Registry(_BUILTIN)
"""The registry behind :func:`make`, :func:`register` and :func:`registered_ids`."""


def make(env_id: str, **kwargs: Any) -> Any:
    """Build a registered fugu env, or a Gymnasium env wrapped into the fugu contract.

    Args:
        env_id: A fugu id such as ``"cartpole-v1"`` or a Gymnasium id such as ``"CartPole-v1"``.
        **kwargs: Passed to the env's constructor.

    Returns:
        A :class:`~fugu.core.env.PufferEnv`.
    """
    return default_registry.make(env_id, **kwargs)


def register(env_id: str, entry_point: str | Callable[..., Any], **kwargs: Any) -> None:
    """Register an env id with the default registry (see :meth:`Registry.register`)."""
    default_registry.register(env_id, entry_point, **kwargs)


def registered_ids() -> list[str]:
    """Ids of every env registered with fugu."""
    return default_registry.ids()
