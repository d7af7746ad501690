"""fugu vec env -> ``gymnasium.vector.VectorEnv`` (same-step autoreset).

Any fugu :class:`~fugu.core.vec.VecEnv` (every :class:`~fugu.core.env.PufferEnv`, every
:mod:`fugu.vector` backend) becomes a Gymnasium vector env with one sub-env per row, so
Gymnasium's vector wrappers and libraries built on them can use fugu envs.

What Gymnasium code sees:

* ``num_envs`` is the number of rows; ``single_observation_space`` and
  ``single_action_space`` are the fugu env's, ``observation_space`` and ``action_space``
  are them batched with ``gymnasium.vector.utils.batch_space``.
* ``metadata["autoreset_mode"]`` is ``AutoresetMode.SAME_STEP``: the step that ends an
  episode returns the next episode's first observation, and the observation that ended it is
  in ``infos["final_obs"]`` (an object array, ``None`` on other rows) with the mask
  ``infos["_final_obs"]``, exactly as ``SyncVectorEnv(autoreset_mode=SAME_STEP)`` does.
* ``infos["final_info"]`` (mask ``infos["_final_info"]``, set on every row that ended) holds
  the finished episode's ``episode_return`` and ``episode_length`` for those rows, each with
  its own ``_episode_return`` / ``_episode_length`` mask.
* Masked (dead) rows, which multi-agent fugu envs use for absent agents, are passed through
  as ordinary rows: their observations, rewards and flags are whatever the env wrote, and the
  env ignores their actions. Whenever some row is dead, ``infos["mask"]`` (mask
  ``infos["_mask"]``, all true) says which rows are live, i.e. act on the next step (a row
  whose agent ended on this step is already dead). Episode statistics count only the
  steps a row was live, and a row that never acted during an episode reports none.
* fugu's aggregated infos (a list of dicts) are not in Gymnasium's per-row format; the
  latest ones are kept in :attr:`GymnasiumVectorEnv.fugu_infos`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from fugu.bridges._common import EpisodeTracker, check_vec_env, fugu_seed
from fugu.core.errors import APIUsageError
from fugu.core.vec import VecEnv as FuguVecEnv

__all__ = ["GymnasiumVectorEnv", "to_gymnasium_vector"]


class GymnasiumVectorEnv(VectorEnv):  # type: ignore[misc]
    """A fugu vec env seen as a ``gymnasium.vector.VectorEnv`` with one sub-env per row.

    Args:
        env: Any fugu :class:`~fugu.core.vec.VecEnv`. The bridge owns it: closing the bridge
            closes it.
        copy: Return copies of the observations (like ``SyncVectorEnv(copy=True)``). With
            ``False`` the observations are views of the env's buffer, overwritten by the next
            step. Rewards and flags are always copies.

    Example:
        >>> import numpy as np
        >>> from gymnasium import spaces
        >>> from fugu.core import PufferEnv
        >>> class Coin(PufferEnv):  # every step ends the episode with reward = action
        ...     def __init__(self, n):
        ...         super().__init__(spaces.Box(0, 1, (1,), np.float32), spaces.Discrete(2), n)
        ...     def reset(self, seed=None):
        ...         return self.observations, []
        ...     def step(self, actions):
        ...         self.rewards[:] = self._write_actions(actions)
        ...         self.terminals[:] = True
        ...         self.final_observations[:] = 1.0
        ...         return self.observations, self.rewards, self.terminals, self.truncations, []
        >>> envs = GymnasiumVectorEnv(Coin(3))
        >>> envs.num_envs, envs.action_space, envs.metadata["autoreset_mode"].value
        (3, MultiDiscrete([2 2 2]), 'SameStep')
        >>> obs, infos = envs.reset(seed=0)
        >>> obs, rewards, terms, truncs, infos = envs.step(np.array([1, 0, 1]))
        >>> rewards.tolist(), terms.tolist(), infos["final_obs"][0], infos["_final_obs"].tolist()
        ([1.0, 0.0, 1.0], [True, True, True], array([1.], dtype=float32), [True, True, True])
        >>> infos["final_info"]["episode_return"].tolist()
        [1.0, 0.0, 1.0]
        >>> envs.close()
    """

    def __init__(self, env: FuguVecEnv, copy: bool = True) -> None:
        self.env = check_vec_env(env)
        self.copy = copy
        self.num_envs = int(env.num_agents)
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = getattr(env, "render_mode", None)
        self.metadata = {
            "autoreset_mode": AutoresetMode.SAME_STEP,
            "render_modes": [self.render_mode] if self.render_mode else [],
        }
        self.fugu_infos: list[dict[str, Any]] = []
        """The fugu env's aggregated infos from the latest ``reset`` or ``step``."""
        self._tracker = EpisodeTracker(self.num_envs)
        self._action_shape = tuple(env.actions.shape)
        self._started = False

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every row; row ``i`` is seeded with ``seed + i`` (or ``seed[i]``).

        Args:
            seed: ``None``, an int, or one seed per row.
            options: fugu envs take no reset options, so this must be ``None`` or empty
                (configure the env through its constructor). Gymnasium's
                ``options["reset_mask"]`` (partial resets) is not supported: fugu envs
                reset rows on their own when their episodes end.

        Returns:
            ``(observations, infos)`` in Gymnasium's vector format.
        """
        if options:
            raise APIUsageError(
                f"fugu envs take no reset options (got {sorted(options)}): pass settings to the "
                "env's constructor; rows autoreset on their own, so 'reset_mask' is not needed"
            )
        if isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))  # seeds self.np_random as Gymnasium does
        observations, fugu_infos = self.env.reset(fugu_seed(seed, self.num_envs))  # type: ignore[arg-type]
        self.fugu_infos = list(fugu_infos)
        masks = self.env.masks
        self._tracker.reset(masks)
        self._started = True
        infos: dict[str, Any] = {}
        self._add_masks(infos, masks)
        return self._observations(observations), infos

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every row and return Gymnasium's ``(obs, rewards, terms, truncs, infos)``.

        Args:
            actions: One action per row, shaped like :attr:`action_space`.

        Returns:
            The batched results; ``infos`` holds ``final_obs`` / ``final_info`` for rows
            whose episode ended on this step (same-step autoreset).
        """
        if not self._started:
            raise APIUsageError("step() called before reset(); call reset() first")
        actions = np.asarray(actions)
        if actions.shape != self._action_shape:
            raise APIUsageError(
                f"actions must have shape {self._action_shape} (one row per env), "
                f"got {actions.shape}"
            )
        observations, rewards, terminals, truncations, fugu_infos = self.env.step(actions)
        self.fugu_infos = list(fugu_infos)
        masks = self.env.masks
        ended = terminals | truncations
        reported = self._tracker.update(rewards, ended, masks)
        infos: dict[str, Any] = {}
        if ended.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for row in np.flatnonzero(ended):
                final_obs[row] = self.env.final_observations[row].copy()
            final_info: dict[str, Any] = {}
            if reported.any():
                final_info["episode_return"] = np.where(reported, self._tracker.last_returns, 0.0)
                final_info["_episode_return"] = reported.copy()
                final_info["episode_length"] = np.where(reported, self._tracker.last_lengths, 0)
                final_info["_episode_length"] = reported.copy()
            infos["final_obs"] = final_obs
            infos["_final_obs"] = ended.copy()
            infos["final_info"] = final_info
            infos["_final_info"] = ended.copy()
        self._add_masks(infos, masks)
        return (
            self._observations(observations),
            np.array(rewards, copy=True),
            np.array(terminals, copy=True),
            np.array(truncations, copy=True),
            infos,
        )

    def render(self) -> tuple[Any, ...]:
        """One frame per row, from the fugu env's ``render(row)``."""
        render = getattr(self.env, "render", None)
        if render is None:
            raise APIUsageError(f"{type(self.env).__name__} has no render(row) method")
        return tuple(render(row) for row in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        """Close the fugu env (called once by ``close``)."""
        self.env.close()

    def _observations(self, observations: np.ndarray) -> np.ndarray:
        return observations.copy() if self.copy else observations

    def _add_masks(self, infos: dict[str, Any], masks: np.ndarray) -> None:
        if not masks.all():
            infos["mask"] = masks.copy()
            infos["_mask"] = np.ones(self.num_envs, dtype=np.bool_)


def to_gymnasium_vector(env: FuguVecEnv, copy: bool = True) -> GymnasiumVectorEnv:
    """Wrap a fugu vec env as a ``gymnasium.vector.VectorEnv`` (see :class:`GymnasiumVectorEnv`).

    Args:
        env: Any fugu :class:`~fugu.core.vec.VecEnv`.
        copy: Return copies of the observations rather than views of the env's buffer.
    """
    return GymnasiumVectorEnv(env, copy=copy)
