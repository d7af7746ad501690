"""Picklable env factories: an env id or a callable, plus keyword arguments.

Backends build each env instance with ``factory(buffers=rows)`` so that it writes straight into
its rows of the backend's buffers. A factory must be picklable to cross into ``spawn`` workers,
so prefer env ids or module-level functions over lambdas.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fugu.core.env import EnvBuffers, PufferEnv
from fugu.core.errors import EnvContractError
from fugu.core.registry import EnvSpec, default_registry

__all__ = ["EnvFactory"]


@dataclass(frozen=True)
class EnvFactory:
    """Builds one env instance, optionally adopting rows of a vectorizer's buffers.

    Args:
        env: A fugu env id, a Gymnasium id, or a callable returning a
            :class:`~fugu.core.env.PufferEnv` that accepts a ``buffers`` keyword argument.
        kwargs: Keyword arguments for the env constructor.

    Example:
        >>> from fugu.core.env import PufferEnv
        >>> EnvFactory(PufferEnv, {}).accepts("buffers")
        True
    """

    env: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    spec: EnvSpec | None = field(default=None, compare=False)
    """The registration of a fugu id, resolved where the factory is made: a worker started
    with ``spawn`` has a fresh registry, without the ids registered in this process."""

    def __post_init__(self) -> None:
        if self.spec is None and isinstance(self.env, str) and self.env in default_registry:
            object.__setattr__(self, "spec", default_registry.spec(self.env))

    def target(self) -> Callable[..., Any] | None:
        """The constructor the factory calls (``None`` for Gymnasium ids)."""
        if not isinstance(self.env, str):
            return self.env
        if self.spec is not None:
            return self.spec.load()
        return None

    def accepts(self, name: str) -> bool:
        """Whether the constructor takes a keyword argument ``name`` (false when unknown)."""
        target = self.target()
        if target is None:
            return False
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return False
        return name in parameters

    def __call__(self, buffers: EnvBuffers | None = None, **extra: Any) -> PufferEnv:
        """Build the env; with ``buffers`` it must adopt them (write its rows in place)."""
        kwargs = {**self.kwargs, **extra}
        if buffers is not None:
            kwargs["buffers"] = buffers
        if self.spec is not None:
            env = self.spec.make(**kwargs)
        elif isinstance(self.env, str):
            env = default_registry.make(self.env, **kwargs)
        else:
            env = self.env(**kwargs)
        for name in ("single_observation_space", "single_action_space", "num_agents", "step"):
            if not hasattr(env, name):
                raise EnvContractError(
                    f"{self.env!r} built {type(env).__name__}, which is not a fugu PufferEnv "
                    f"(no {name!r}); wrap Gymnasium envs with fugu.core.emulation"
                )
        if buffers is not None and not np.may_share_memory(env.observations, buffers.observations):
            raise EnvContractError(
                f"{type(env).__name__} ignored the buffers it was given: its __init__ must accept "
                "buffers=... and pass them to PufferEnv.__init__"
            )
        return env  # type: ignore[no-any-return]
