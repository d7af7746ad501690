"""A one-row fugu env as a plain ``gymnasium.Env``, for tools that take a single env.

Gymnasium's ``utils.env_checker.check_env``, SB3's ``check_env`` and wrappers such as
``RecordVideo`` expect one env that does not reset itself. :class:`GymnasiumEnv` presents row 0
of a fugu env (one row, one agent) that way: the step that ends an episode returns the
observation that ended it (the fugu env's ``final_observations``; same-step autoreset has
already begun the next episode underneath), and ``reset`` starts a new episode.

Example:
    >>> import fugu
    >>> env = GymnasiumEnv(fugu.make("cartpole-v1"))
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((4,), Discrete(2))
    >>> obs, reward, terminated, truncated, info = env.step(1)
    >>> float(reward), terminated, truncated
    (1.0, False, False)
    >>> env.close()
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["GymnasiumEnv", "to_gymnasium_env"]


class GymnasiumEnv(gymnasium.Env):  # type: ignore[misc]
    """Row 0 of a one-row fugu env as a ``gymnasium.Env``.

    Args:
        env: A fugu env (or vec env) with exactly one row.
    """

    def __init__(self, env: Any) -> None:
        if int(env.num_agents) != 1:
            raise APIUsageError(
                f"GymnasiumEnv wraps a one-row env, got {env.num_agents} rows; build it with "
                "num_envs=1, or use fugu.bridges.gymnasium_vector for vector envs"
            )
        self.env = env
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.render_mode = getattr(env, "render_mode", None)
        self.metadata = {
            "render_modes": [self.render_mode] if self.render_mode else [],
            "render_fps": 30,
        }
        self._needs_reset = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode (seeded with ``seed`` when given)."""
        super().reset(seed=seed)
        obs, _ = self.env.reset(seed)
        self._needs_reset = False
        return obs[0].copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step the episode; the last step of an episode returns its final observation."""
        if self._needs_reset:
            raise APIUsageError("call reset() before step(), and again after an episode ends")
        actions = np.asarray(action, dtype=self.env.actions.dtype).reshape(self.env.actions.shape)
        obs, rewards, terminals, truncations, infos = self.env.step(actions)
        terminated, truncated = bool(terminals[0]), bool(truncations[0])
        info: dict[str, Any] = {}
        if terminated or truncated:
            self._needs_reset = True
            obs = self.env.final_observations
            if infos:
                info["episode"] = dict(infos[-1])
        return obs[0].copy(), float(rewards[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """An RGB frame of row 0 (``None`` when the env does not render)."""
        if self.render_mode is None:
            return None
        return np.asarray(self.env.render(0))

    def close(self) -> None:
        """Close the fugu env."""
        self.env.close()


def to_gymnasium_env(env: Any) -> GymnasiumEnv:
    """Wrap a one-row fugu env as a ``gymnasium.Env`` (see :class:`GymnasiumEnv`)."""
    return GymnasiumEnv(env)
