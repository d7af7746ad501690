"""HazardNav: reach a goal in the plane while avoiding circular hazards (constrained RL).

Each episode draws ``num_hazards`` hazard centres uniformly in ``[-0.8, 0.8]^2`` (radius
``hazard_radius``), then a start and a goal uniformly in ``[-1, 1]^2`` outside every hazard,
at least 0.5 apart. The Box action in ``[-1, 1]^2`` is a velocity: the agent moves by
``max_speed * clip(action, -1, 1)`` and is clipped to the square. Hazards do not block
movement; they cost: every step that ends inside a hazard has cost 1 (else 0), written to the
declared extra field ``costs [A] float32`` next to the rewards, and the episode's summed cost
is reported as ``episode_cost`` in the infos. The reward is the progress toward the goal
``(previous distance - distance) * 10`` plus ``goal_reward`` (1) on the step that reaches it
(distance < ``goal_radius``, which terminates the episode); episodes are truncated after
``max_steps`` (200) steps. The row is ``(x, y, goal - position, hazard centres - position)``
(float32, ``4 + 2 num_hazards`` values in ``[-2, 2]``).

The shortest path crosses hazards in many episodes, so reward and cost conflict: it is the
env for cost-constrained algorithms (PPO-Lagrangian, CPO) with a cost budget per episode.

Example:
    >>> env = HazardNav(num_envs=2, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.costs.shape
    ((2, 12), (2,))
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError
from fugu.core.schema import COSTS
from fugu.envs import render as draw
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

__all__ = ["HazardNav"]

_MAX_SPEED, _HAZARD_RADIUS, _GOAL_RADIUS, _GOAL_REWARD, _MAX_STEPS, _PROGRESS = range(6)


@njit(cache=True, nogil=True)
def _in_hazard(
    hazards: np.ndarray, i: int, x: float, y: float, radius: float
) -> bool:  # pragma: no cover
    for h in range(hazards.shape[1]):
        if math.hypot(x - hazards[i, h, 0], y - hazards[i, h, 1]) < radius:
            return True
    return False


@njit(cache=True, nogil=True)
def _draw(
    i: int,
    pos: np.ndarray,
    goal: np.ndarray,
    hazards: np.ndarray,
    rng: np.ndarray,
    params: np.ndarray,
) -> None:  # pragma: no cover - numba
    radius = params[_HAZARD_RADIUS]
    for h in range(hazards.shape[1]):
        hazards[i, h, 0] = rng_uniform(rng, i, -0.8, 0.8)
        hazards[i, h, 1] = rng_uniform(rng, i, -0.8, 0.8)
    for _ in range(100):
        pos[i, 0] = rng_uniform(rng, i, -1.0, 1.0)
        pos[i, 1] = rng_uniform(rng, i, -1.0, 1.0)
        if not _in_hazard(hazards, i, pos[i, 0], pos[i, 1], radius):
            break
    for _ in range(100):
        goal[i, 0] = rng_uniform(rng, i, -1.0, 1.0)
        goal[i, 1] = rng_uniform(rng, i, -1.0, 1.0)
        far = math.hypot(goal[i, 0] - pos[i, 0], goal[i, 1] - pos[i, 1]) >= 0.5
        if far and not _in_hazard(hazards, i, goal[i, 0], goal[i, 1], radius):
            break


@njit(cache=True, nogil=True)
def _observe(
    i: int, pos: np.ndarray, goal: np.ndarray, hazards: np.ndarray, obs: np.ndarray
) -> None:  # pragma: no cover - numba
    x = pos[i, 0]
    y = pos[i, 1]
    obs[i, 0] = x
    obs[i, 1] = y
    obs[i, 2] = goal[i, 0] - x
    obs[i, 3] = goal[i, 1] - y
    for h in range(hazards.shape[1]):
        obs[i, 4 + 2 * h] = hazards[i, h, 0] - x
        obs[i, 5 + 2 * h] = hazards[i, h, 1] - y


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, pos: np.ndarray, goal: np.ndarray, hazards: np.ndarray,
    episode_cost: np.ndarray, params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        _draw(i, pos, goal, hazards, rng, params)
        _observe(i, pos, goal, hazards, obs)
        episode_cost[i] = 0.0


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, pos: np.ndarray, goal: np.ndarray, hazards: np.ndarray,
    episode_cost: np.ndarray, costs: np.ndarray, params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations, rng = io[TERMINALS], io[TRUNCATIONS], io[RNG]
    ret, length, stats = io[EPISODE_RETURN], io[EPISODE_LENGTH], io[EPISODE_STATS]
    max_speed = params[_MAX_SPEED]
    for i in range(lo, hi):
        before = math.hypot(goal[i, 0] - pos[i, 0], goal[i, 1] - pos[i, 1])
        for k in range(2):
            a = min(max(np.float64(actions[i, k]), -1.0), 1.0)
            pos[i, k] = min(max(pos[i, k] + max_speed * a, -1.0), 1.0)
        dist = math.hypot(goal[i, 0] - pos[i, 0], goal[i, 1] - pos[i, 1])
        reached = dist < params[_GOAL_RADIUS]
        reward = (before - dist) * params[_PROGRESS]
        if reached:
            reward += params[_GOAL_REWARD]
        cost = 1.0 if _in_hazard(hazards, i, pos[i, 0], pos[i, 1], params[_HAZARD_RADIUS]) else 0.0
        rewards[i] = reward
        costs[i] = cost
        ret[i] += reward
        episode_cost[i] += cost
        length[i] += 1
        truncated = (not reached) and length[i] >= params[_MAX_STEPS]
        terminals[i] = reached
        truncations[i] = truncated
        _observe(i, pos, goal, hazards, obs)
        if reached or truncated:
            stats[i, 3] += episode_cost[i]
            stats[i, 4] += 1.0 if reached else 0.0
            episode_cost[i] = 0.0
            end_episode(io, i, i, i + 1)
            _draw(i, pos, goal, hazards, rng, params)
            _observe(i, pos, goal, hazards, obs)


class HazardNav(NativeEnv):
    """``hazard-nav-v1``: 2-D navigation to a goal with costly hazard zones (Box(2) actions).

    It declares the extra field ``costs`` (:data:`fugu.core.schema.COSTS`, float32 ``[A]``,
    written in place each step: 1 inside a hazard, else 0; ``env.costs``, ``env.extras`` and
    every backend's batches carry it); infos carry ``episode_cost`` (mean summed cost per
    episode) and ``success`` (fraction of episodes reaching the goal).

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        num_hazards: Hazard zones per episode.
        hazard_radius: Radius of each hazard.
        goal_radius: Distance to the goal that counts as reaching it.
        max_speed: Distance moved per step along each axis at full action.
        goal_reward: Bonus on the step that reaches the goal.
        progress_coef: Reward per unit of distance gained toward the goal.
        max_steps: Truncation step count.
    """

    costs: np.ndarray
    """Per-step cost of every row (the ``costs`` extra field, ``self.extras["costs"]``)."""
    score_keys = ("episode_cost", "success")
    solve_threshold = 0.9  # success rate, with episode_cost <= 5 (see docs/envs/hazard-nav.md)

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        num_hazards: int = 4,
        hazard_radius: float = 0.2,
        goal_radius: float = 0.1,
        max_speed: float = 0.05,
        goal_reward: float = 1.0,
        progress_coef: float = 10.0,
        max_steps: int = 200,
    ) -> None:
        if int(num_hazards) < 0 or hazard_radius < 0 or goal_radius <= 0 or max_speed <= 0:
            raise APIUsageError(
                "hazard-nav needs num_hazards >= 0, hazard_radius >= 0, goal_radius > 0 and "
                f"max_speed > 0, got {num_hazards}, {hazard_radius}, {goal_radius}, {max_speed}"
            )
        if int(max_steps) < 1:
            raise APIUsageError(f"max_steps must be >= 1, got {max_steps}")
        self.num_hazards = int(num_hazards)
        self.hazard_radius = float(hazard_radius)
        self.goal_radius = float(goal_radius)
        self.params = np.array(
            [max_speed, hazard_radius, goal_radius, goal_reward, max_steps, progress_coef],
            dtype=np.float64,
        )
        super().__init__(
            num_envs,
            spaces.Box(-2.0, 2.0, (4 + 2 * self.num_hazards,), dtype=np.float32),
            spaces.Box(-1.0, 1.0, (2,), dtype=np.float32),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
            extra_fields=(COSTS,),
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``position``/``goal`` ``[num_envs, 2]``, ``hazards`` ``[num_envs, K, 2]`` (float64)
        and ``episode_cost`` ``[num_envs]``."""
        return {
            "position": np.zeros((num_envs, 2), dtype=np.float64),
            "goal": np.zeros((num_envs, 2), dtype=np.float64),
            "hazards": np.zeros((num_envs, self.num_hazards, 2), dtype=np.float64),
            "episode_cost": np.zeros(num_envs, dtype=np.float64),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh hazards, starts and goals for copies ``[lo, hi)``."""
        s = self.state
        self.costs[lo:hi] = 0.0
        _reset(
            lo, hi, self.io, s["position"], s["goal"], s["hazards"], s["episode_cost"],
            self.params,
        )  # fmt: skip

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        s = self.state
        _step(
            lo, hi, self.io, s["position"], s["goal"], s["hazards"], s["episode_cost"],
            self.costs, self.params,
        )  # fmt: skip

    def render(self, row: int = 0) -> np.ndarray:
        """A 128x128 image: hazards (red), the goal (green) and the agent (blue)."""
        size = 128

        def px(v: float) -> float:
            return (v + 1.0) * 0.5 * (size - 1)

        scale = 0.5 * (size - 1)
        img = draw.canvas(size, size, (245, 245, 245))
        for hx, hy in self.state["hazards"][row]:
            draw.fill_circle(img, px(hx), px(hy), self.hazard_radius * scale, (230, 120, 120))
        gx, gy = self.state["goal"][row]
        draw.fill_circle(img, px(gx), px(gy), max(2.0, self.goal_radius * scale), (90, 200, 90))
        x, y = self.state["position"][row]
        draw.fill_circle(img, px(x), px(y), 3, (40, 80, 220))
        return img
