"""PointGoal: move a point in the plane to a goal (goal-conditioned, continuous, for HER).

A point and a goal are drawn uniformly in the square ``[-1, 1]^2`` (the goal at least
``distance_threshold`` away). The Box action in ``[-1, 1]^2`` is a velocity: the point moves
by ``max_speed * clip(action, -1, 1)`` per step and is clipped to the square. The sparse
reward is ``0`` when the point is within ``distance_threshold`` (0.1) of the goal after the
step and ``-1`` otherwise; ``dense=True`` gives ``-distance`` instead. Episodes are truncated
after ``max_steps`` (50) steps and, with ``terminate_on_success=True``, terminate on success
(by default they do not, as in Gymnasium-Robotics' goal envs). The flat row is
``(observation, achieved_goal, desired_goal)`` = ``(position, position, goal)``, six float32
values in ``[-1, 1]``; see :mod:`fugu.envs.goals`.

Example:
    >>> env = PointGoal(num_envs=3, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.goal_layout.achieved_goal
    ((3, 6), slice(2, 4, None))
    >>> env.compute_reward(np.zeros((4, 2)), np.full((4, 2), 0.05)).tolist()
    [0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError
from fugu.envs import render as draw
from fugu.envs.goals import GoalLayout
from fugu.envs.native import (
    ACTIONS,
    EPISODE_LENGTH,
    EPISODE_RETURN,
    EPISODE_STATS,
    OBSERVATIONS,
    REWARDS,
    RNG,
    TERMINALS,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
    rng_uniform,
)

__all__ = ["PointGoal", "pointgoal_reward"]


@njit(cache=True, nogil=True)
def _draw(
    i: int, pos: np.ndarray, goal: np.ndarray, rng: np.ndarray, threshold: float
) -> None:  # pragma: no cover - numba
    pos[i, 0] = rng_uniform(rng, i, -1.0, 1.0)
    pos[i, 1] = rng_uniform(rng, i, -1.0, 1.0)
    for _ in range(100):
        goal[i, 0] = rng_uniform(rng, i, -1.0, 1.0)
        goal[i, 1] = rng_uniform(rng, i, -1.0, 1.0)
        if math.hypot(goal[i, 0] - pos[i, 0], goal[i, 1] - pos[i, 1]) >= threshold:
            break


@njit(cache=True, nogil=True)
def _observe(
    i: int, pos: np.ndarray, goal: np.ndarray, obs: np.ndarray
) -> None:  # pragma: no cover
    for k in range(2):
        obs[i, k] = pos[i, k]
        obs[i, 2 + k] = pos[i, k]
        obs[i, 4 + k] = goal[i, k]


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, pos: np.ndarray, goal: np.ndarray, threshold: float
) -> None:  # pragma: no cover - numba
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        _draw(i, pos, goal, rng, threshold)
        _observe(i, pos, goal, obs)


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, pos: np.ndarray, goal: np.ndarray, params: np.ndarray
) -> None:  # pragma: no cover - numba
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations, rng = io[TERMINALS], io[TRUNCATIONS], io[RNG]
    ret, length, stats = io[EPISODE_RETURN], io[EPISODE_LENGTH], io[EPISODE_STATS]
    max_speed = params[0]
    threshold = params[1]
    dense = params[2] > 0.0
    terminate = params[3] > 0.0
    max_steps = params[4]
    for i in range(lo, hi):
        for k in range(2):
            a = min(max(np.float64(actions[i, k]), -1.0), 1.0)
            pos[i, k] = min(max(pos[i, k] + max_speed * a, -1.0), 1.0)
        dist = math.hypot(pos[i, 0] - goal[i, 0], pos[i, 1] - goal[i, 1])
        success = dist < threshold
        if dense:
            reward = -dist
        else:
            reward = 0.0 if success else -1.0
        rewards[i] = reward
        ret[i] += reward
        length[i] += 1
        terminal = terminate and success
        truncated = (not terminal) and length[i] >= max_steps
        terminals[i] = terminal
        truncations[i] = truncated
        _observe(i, pos, goal, obs)
        if terminal or truncated:
            stats[i, 3] += 1.0 if success else 0.0
            end_episode(io, i, i, i + 1)
            _draw(i, pos, goal, rng, threshold)
            _observe(i, pos, goal, obs)


def pointgoal_reward(
    achieved_goal: np.ndarray,
    desired_goal: np.ndarray,
    distance_threshold: float = 0.1,
    dense: bool = False,
) -> np.ndarray:
    """PointGoal's reward for goals ``[..., 2]`` of any leading shape.

    Sparse: ``0`` within ``distance_threshold``, else ``-1``; dense: ``-distance``.

    Example:
        >>> pointgoal_reward(np.zeros((2, 2)), np.array([[0.0, 0.05], [0.0, 0.5]])).tolist()
        [0.0, -1.0]
    """
    diff = np.asarray(achieved_goal, dtype=np.float64) - np.asarray(desired_goal, np.float64)
    dist = np.sqrt(np.sum(diff * diff, axis=-1))
    if dense:
        return (-dist).astype(np.float32)
    return np.where(dist < distance_threshold, 0.0, -1.0).astype(np.float32)


class PointGoal(NativeEnv):
    """``pointgoal-v1``: steer a 2-D point to a goal with a Box velocity action.

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        max_speed: Distance moved per step along each axis at full action.
        distance_threshold: Success radius around the goal.
        dense: Reward ``-distance`` instead of the sparse ``-1``/``0``.
        terminate_on_success: End the episode on the first successful step.
        max_steps: Truncation step count.
    """

    score_keys = ("success",)
    solve_threshold = 0.95  # success rate (the last step of the episode within the threshold)

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        max_speed: float = 0.1,
        distance_threshold: float = 0.1,
        dense: bool = False,
        terminate_on_success: bool = False,
        max_steps: int = 50,
    ) -> None:
        if max_speed <= 0 or distance_threshold <= 0 or int(max_steps) < 1:
            raise APIUsageError(
                "pointgoal needs max_speed > 0, distance_threshold > 0 and max_steps >= 1, got "
                f"{max_speed}, {distance_threshold}, {max_steps}"
            )
        self.max_speed = float(max_speed)
        self.distance_threshold = float(distance_threshold)
        self.dense = bool(dense)
        self.terminate_on_success = bool(terminate_on_success)
        self.max_steps = int(max_steps)
        self.params = np.array(
            [
                self.max_speed,
                self.distance_threshold,
                float(self.dense),
                float(self.terminate_on_success),
                float(self.max_steps),
            ]
        )
        self.goal_layout = GoalLayout(2, 2)
        observation_space = spaces.Box(-1.0, 1.0, (6,), dtype=np.float32)
        self.dict_observation_space = self.goal_layout.dict_space(observation_space)
        super().__init__(
            num_envs,
            observation_space,
            spaces.Box(-1.0, 1.0, (2,), dtype=np.float32),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``position`` and ``goal``: float64 ``[num_envs, 2]``."""
        return {
            "position": np.zeros((num_envs, 2), dtype=np.float64),
            "goal": np.zeros((num_envs, 2), dtype=np.float64),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh points and goals for copies ``[lo, hi)``."""
        s = self.state
        _reset(lo, hi, self.io, s["position"], s["goal"], self.distance_threshold)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        s = self.state
        _step(lo, hi, self.io, s["position"], s["goal"], self.params)

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None
    ) -> np.ndarray:
        """Rewards ``[...]`` for goals ``[..., 2]`` of any leading shape (for relabelling)."""
        return pointgoal_reward(achieved_goal, desired_goal, self.distance_threshold, self.dense)

    def render(self, row: int = 0) -> np.ndarray:
        """A 128x128 image: the goal (green, success radius) and the point (blue)."""
        size = 128
        img = draw.canvas(size, size, (245, 245, 245))

        def px(v: float) -> float:
            return (v + 1.0) * 0.5 * (size - 1)

        gx, gy = self.state["goal"][row]
        x, y = self.state["position"][row]
        radius = max(2.0, self.distance_threshold * 0.5 * (size - 1))
        draw.fill_circle(img, px(gx), px(gy), radius, (90, 200, 90))
        draw.fill_circle(img, px(x), px(y), 3, (40, 80, 220))
        return img
