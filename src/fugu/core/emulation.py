"""Emulation: any Gymnasium env, nested spaces included, presented as a 1-row fugu env.

:class:`GymnasiumPufferEnv` wraps one ``gymnasium.Env``. Its observation space, however nested,
is flattened by a :class:`~fugu.core.flatten.SpaceLayout` into the row of the observation
buffer (written leaf by leaf in place), and its action space is carried by an
:class:`~fugu.core.actions.ActionLayout` (structured actions, mixed discrete + continuous
included). Autoreset is same-step: the step that ends an episode writes the observation that
ended it into ``final_observations`` and the next episode's first observation into
``observations``, and reports ``{"episode_return", "episode_length", "num_episodes"}`` in infos.

Example:
    >>> env = GymnasiumPufferEnv.from_id("CartPole-v1")
    >>> obs, infos = env.reset(seed=0)
    >>> obs.shape, obs.dtype, env.single_action_space
    ((1, 4), dtype('float32'), Discrete(2))
    >>> obs, rewards, terminals, truncations, infos = env.step(np.zeros(1, np.int32))
    >>> rewards.tolist(), obs is env.observations
    ([1.0], True)
    >>> env.close()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import gymnasium
import numpy as np

from fugu.core.actions import ActionLayout, ActionLeaf
from fugu.core.env import EnvBuffers, Infos, PufferEnv, StepResult
from fugu.core.errors import APIUsageError, EnvContractError
from fugu.core.flatten import Leaf, SpaceLayout
from fugu.core.schema import COSTS, Field, action_masks_field, num_logits

__all__ = [
    "ActionLayout",
    "ActionLeaf",
    "GymnasiumPufferEnv",
    "Leaf",
    "SpaceLayout",
    "episode_info",
    "first_seed",
]


def first_seed(seed: int | Sequence[int] | None) -> int | None:
    """The seed of row 0 from the ``reset`` seed argument (an int, a sequence or ``None``)."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    return int(seed[0])


def episode_info(
    episode_return: float, episode_length: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The info dict reported when an episode ends.

    Numeric scalars of ``extra`` (the env's last info dict, e.g. a ``score``) are kept; the
    rest (arrays, strings, nested dicts) is dropped so infos stay small and plain.

    Example:
        >>> episode_info(3.0, 3, {"score": 2, "frames": [1, 2]})
        {'score': 2.0, 'episode_return': 3.0, 'episode_length': 3, 'num_episodes': 1}
    """
    info: dict[str, Any] = {}
    if extra:
        for key, value in extra.items():
            if isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_)):
                info[str(key)] = float(value)
    info["episode_return"] = float(episode_return)
    info["episode_length"] = int(episode_length)
    info["num_episodes"] = 1
    return info


class GymnasiumPufferEnv(PufferEnv):
    """One Gymnasium env as a 1-row fugu env (nested spaces flattened, same-step autoreset).

    Args:
        env: A ``gymnasium.Env`` instance, or a zero-argument callable building one.
        buffers: One row of buffers to adopt (from a vectorizer); allocated when ``None``.
        action_masks: Declare the ``action_masks`` extra field (bool ``[1, num_logits]``, see
            :func:`fugu.core.schema.action_masks_field`) and fill it from ``info["action_mask"]``
            (the common Gymnasium convention, e.g. ``Taxi-v4``) of every reset and step; on an
            autoreset step it holds the new episode's mask. A step whose info has no mask
            allows every action. Needs a Discrete or MultiDiscrete action space.
        costs: Declare the ``costs`` extra field (:data:`fugu.core.schema.COSTS`, float32
            ``[1]``) and fill it from ``info["cost"]`` of every step (0 when absent), the
            Safety-Gymnasium convention; the episode's summed cost is reported as
            ``episode_cost`` in the infos.

    Example:
        >>> env = GymnasiumPufferEnv.from_id("Taxi-v4", action_masks=True)
        >>> _ = env.reset(seed=0)
        >>> env.action_masks.shape, env.action_masks.dtype
        ((1, 6), dtype('bool'))
        >>> env.close()

    Attributes:
        env: The wrapped Gymnasium env.
        observation_layout: How the observation space is flattened into a row; policies use it
            to restore nested observations (:func:`fugu.ops.emulation.restore`).
        action_layout: How the action space is carried by the action row.
    """

    def __init__(
        self,
        env: gymnasium.Env | Callable[[], gymnasium.Env],
        buffers: EnvBuffers | None = None,
        *,
        action_masks: bool = False,
        costs: bool = False,
    ) -> None:
        if not isinstance(env, gymnasium.Env):
            if not callable(env):
                raise APIUsageError(
                    f"GymnasiumPufferEnv needs a gymnasium.Env or a callable building one, "
                    f"got {type(env).__name__}"
                )
            env = env()
            if not isinstance(env, gymnasium.Env):
                raise APIUsageError(f"the env factory returned {type(env).__name__}, not an Env")
        self.env = env
        self.observation_layout = SpaceLayout.from_space(env.observation_space)
        self.action_layout = ActionLayout.from_space(env.action_space)
        extra_fields: tuple[Field, ...] = ()
        if action_masks:
            extra_fields = (action_masks_field(num_logits(self.action_layout.single_action_space)),)
        if costs:
            extra_fields = (*extra_fields, COSTS)
        super().__init__(
            self.observation_layout.row_space(),
            self.action_layout.single_action_space,
            1,
            buffers,
            extra_fields,
        )
        self._mask_row = self.extras["action_masks"][0] if action_masks else None
        self._costs = self.extras["costs"] if costs else None
        self._episode_cost = 0.0
        self.render_mode = getattr(env, "render_mode", None)
        self._write_obs = self.observation_layout.writer(self.observations[0])
        self._write_final = self.observation_layout.writer(self.final_observations[0])
        self._plain_obs = self.observation_layout.is_passthrough
        self._plain_action = self.action_layout.is_identity
        self._decode = self.action_layout.decode
        self._env_step: Callable[[Any], tuple[Any, ...]] = self._checked_first_step
        self._env_reset = env.reset
        self._episode_return = 0.0
        self._episode_length = 0

    @classmethod
    def from_id(
        cls,
        env_id: str,
        *,
        buffers: EnvBuffers | None = None,
        action_masks: bool = False,
        costs: bool = False,
        **kwargs: Any,
    ) -> GymnasiumPufferEnv:
        """Build the Gymnasium env ``env_id`` with ``gymnasium.make(env_id, **kwargs)`` and wrap it.

        Example:
            >>> env = GymnasiumPufferEnv.from_id("Pendulum-v1")
            >>> env.single_action_space.shape, env.actions.dtype
            ((1,), dtype('float32'))
            >>> env.close()
        """
        return cls(
            gymnasium.make(env_id, **kwargs),
            buffers=buffers,
            action_masks=action_masks,
            costs=costs,
        )

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[np.ndarray, Infos]:
        """Reset the env (seeded with ``seed``, or its first element) and return the views."""
        self._check_open()
        obs, info = self.env.reset(seed=first_seed(seed))
        if self._mask_row is not None:
            self._write_mask(info)
        if self._plain_obs:
            self.observations[0] = obs
        else:
            self._write_obs(obs)
        self.rewards[0] = 0.0
        self.terminals[0] = False
        self.truncations[0] = False
        self.masks[0] = True
        self._episode_return = 0.0
        self._episode_length = 0
        self._episode_cost = 0.0
        if self._costs is not None:
            self._costs[0] = 0.0
        return self.observations, []

    def step(self, actions: np.ndarray) -> StepResult:
        """Step with the action row ``actions[0]``; autoreset in the same step when done."""
        if actions is not self.actions:
            self._write_actions(actions)
        action = self.actions[0]
        if not self._plain_action:
            action = self._decode(action)
        obs, reward, terminated, truncated, info = self._env_step(action)
        self._episode_return += reward
        self._episode_length += 1
        self.rewards[0] = reward
        self.terminals[0] = terminated
        self.truncations[0] = truncated
        if self._costs is not None:
            cost = float(info.get("cost", 0.0))
            self._costs[0] = cost
            self._episode_cost += cost
        if terminated or truncated:
            infos = [episode_info(self._episode_return, self._episode_length, info)]
            if self._costs is not None:
                infos[0]["episode_cost"] = self._episode_cost
                infos[0].pop("cost", None)
                self._episode_cost = 0.0
            self._episode_return = 0.0
            self._episode_length = 0
            if self._plain_obs:
                self.final_observations[0] = obs
                obs, info = self._env_reset()
                self.observations[0] = obs
            else:
                self._write_final(obs)
                obs, info = self._env_reset()
                self._write_obs(obs)
            if self._mask_row is not None:
                self._write_mask(info)
            return self.observations, self.rewards, self.terminals, self.truncations, infos
        if self._plain_obs:
            self.observations[0] = obs
        else:
            self._write_obs(obs)
        if self._mask_row is not None:
            self._write_mask(info)
        return self.observations, self.rewards, self.terminals, self.truncations, []

    def _checked_first_step(self, action: Any) -> tuple[Any, ...]:
        """The wrapped env's first ``step``, checked for Gymnasium's 5-tuple of a scalar reward
        and a dict info; later steps call ``env.step`` directly (no cost on the hot path)."""
        result = self.env.step(action)
        name = type(self.env).__name__
        if not isinstance(result, tuple) or len(result) != 5:
            raise EnvContractError(
                f"{name}.step must return (obs, reward, terminated, truncated, info) as "
                f"Gymnasium 1.x does; got {type(result).__name__} of length "
                f"{len(result) if isinstance(result, (tuple, list)) else '?'}"
            )
        _, reward, terminated, truncated, info = result
        if np.ndim(reward) != 0 or not np.isrealobj(reward):
            raise EnvContractError(
                f"{name}.step returned a reward of shape {np.shape(reward)}; a single-agent "
                "Gymnasium env returns one real scalar per step. For one reward per agent, "
                "write a PettingZoo env (fugu.bridges.pettingzoo) or a native multi-row env"
            )
        if not isinstance(info, dict):
            raise EnvContractError(
                f"{name}.step returned info of type {type(info).__name__}; Gymnasium's info "
                "is a dict (return {} when there is nothing to report)"
            )
        for flag, value in (("terminated", terminated), ("truncated", truncated)):
            if np.ndim(value) != 0:
                raise EnvContractError(
                    f"{name}.step returned {flag} of shape {np.shape(value)}; expected a bool"
                )
        self._env_step = self.env.step
        return result

    def _write_mask(self, info: dict[str, Any]) -> None:
        """Copy ``info["action_mask"]`` (an array, or one per MultiDiscrete component)."""
        assert self._mask_row is not None
        mask = info.get("action_mask")
        if mask is None:
            self._mask_row[:] = True
        elif isinstance(mask, (tuple, list)):
            self._mask_row[:] = np.concatenate([np.ravel(m) for m in mask]).astype(bool)
        else:
            self._mask_row[:] = np.ravel(mask).astype(bool)

    def render(self, row: int = 0) -> np.ndarray:
        """The wrapped env's ``render()`` (build it with ``render_mode="rgb_array"``)."""
        if row != 0:
            raise APIUsageError(f"a GymnasiumPufferEnv has one row; got row={row}")
        frame = self.env.render()
        if frame is None:
            raise APIUsageError(
                "the wrapped env rendered nothing; build it with render_mode='rgb_array'"
            )
        return np.asarray(frame)

    def close(self) -> None:
        """Close the wrapped env (idempotent)."""
        if not self.closed:
            self.env.close()
        super().close()

    def __repr__(self) -> str:
        return f"GymnasiumPufferEnv({self.env!r})"
