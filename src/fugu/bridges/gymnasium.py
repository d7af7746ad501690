"""Bring Gymnasium envs into fugu: ids, instances and factories become fugu envs.

A thin public face over :class:`fugu.core.emulation.GymnasiumPufferEnv` (nested spaces are
flattened, structured actions carried, autoreset is same-step). For the other direction (a fugu
env as a ``gymnasium.vector.VectorEnv``) see :mod:`fugu.bridges.gymnasium_vector`.

Example:
    >>> env = from_gymnasium("CartPole-v1")
    >>> env.reset(seed=1)[0].shape
    (1, 4)
    >>> env.close()
    >>> factory = gymnasium_env_creator("CartPole-v1", max_episode_steps=50)
    >>> env = factory()
    >>> env.env.spec.max_episode_steps
    50
    >>> env.close()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium

from fugu.core.emulation import GymnasiumPufferEnv
from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError

__all__ = ["GymnasiumEnvCreator", "GymnasiumPufferEnv", "from_gymnasium", "gymnasium_env_creator"]


def from_gymnasium(
    env: str | gymnasium.Env | Callable[[], gymnasium.Env],
    *,
    buffers: EnvBuffers | None = None,
    action_masks: bool = False,
    costs: bool = False,
    **kwargs: Any,
) -> GymnasiumPufferEnv:
    """Wrap a Gymnasium env id, instance or factory as a 1-row fugu env.

    Args:
        env: A Gymnasium id (built with ``gymnasium.make(env, **kwargs)``), an env instance, or
            a zero-argument callable returning one.
        buffers: One row of buffers to adopt (from a vectorizer).
        action_masks: Declare the ``action_masks`` extra field, filled from
            ``info["action_mask"]`` (see :class:`~fugu.core.emulation.GymnasiumPufferEnv`).
        costs: Declare the ``costs`` extra field, filled from ``info["cost"]`` (safe RL).
        **kwargs: Passed to ``gymnasium.make`` (ids only).
    """
    if isinstance(env, str):
        return GymnasiumPufferEnv.from_id(
            env, buffers=buffers, action_masks=action_masks, costs=costs, **kwargs
        )
    if kwargs:
        raise APIUsageError(
            f"keyword arguments {sorted(kwargs)} only apply to Gymnasium ids; pass them to "
            "your env's constructor instead"
        )
    return GymnasiumPufferEnv(env, buffers=buffers, action_masks=action_masks, costs=costs)


@dataclass(frozen=True)
class GymnasiumEnvCreator:
    """A picklable factory building ``GymnasiumPufferEnv(gymnasium.make(env_id, **kwargs))``.

    Vectorizers call it (with ``buffers=`` when they own the buffers) in each worker. With
    ``action_masks`` every env declares the ``action_masks`` extra field (filled from
    ``info["action_mask"]``), which every backend then carries; with ``costs`` the
    ``costs`` field (filled from ``info["cost"]``).
    """

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    action_masks: bool = False
    costs: bool = False

    def __call__(self, buffers: EnvBuffers | None = None, **overrides: Any) -> GymnasiumPufferEnv:
        """Build one wrapped env; ``overrides`` update the stored keyword arguments."""
        return GymnasiumPufferEnv.from_id(
            self.env_id,
            buffers=buffers,
            action_masks=self.action_masks,
            costs=self.costs,
            **{**self.kwargs, **overrides},
        )


def gymnasium_env_creator(
    env_id: str, *, action_masks: bool = False, costs: bool = False, **kwargs: Any
) -> GymnasiumEnvCreator:
    """A picklable factory for the Gymnasium id ``env_id`` (for vectorizers and ``check_env``).

    Raises:
        APIUsageError: ``env_id`` is not registered with Gymnasium.
    """
    if env_id not in gymnasium.registry:
        raise APIUsageError(
            f"{env_id!r} is not a Gymnasium id; gymnasium.pprint_registry() lists them"
        )
    return GymnasiumEnvCreator(env_id, dict(kwargs), action_masks, costs)
