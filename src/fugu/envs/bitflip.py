"""BitFlip: flip bits until they match a goal pattern (goal-conditioned, for HER).

Each copy holds ``n`` bits and a goal pattern, both uniform at reset (the goal always differs
from the start). Action ``k`` flips bit ``k``. The reward is ``-1`` on every step that leaves
the bits different from the goal and ``0`` on the step that matches it, which terminates the
episode; episodes are truncated after ``max_steps`` (default ``n``) steps. The row is the flat
``(observation, achieved_goal, desired_goal)`` = ``(bits, bits, goal)`` of ``3 n`` float32
values in ``{0, 1}``; see :mod:`fugu.envs.goals`.

Example:
    >>> env = BitFlip(num_envs=2, n=4, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.goal_layout.desired_goal
    ((2, 12), slice(8, 12, None))
    >>> env.compute_reward(np.array([[0, 1, 1, 0]]), np.array([[0, 1, 1, 0]])).tolist()
    [0.0]
"""

from __future__ import annotations

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
    rng_integers,
)

__all__ = ["BitFlip", "bitflip_reward"]


@njit(cache=True, nogil=True)
def _draw(i: int, bits: np.ndarray, goal: np.ndarray, rng: np.ndarray) -> None:  # pragma: no cover
    n = bits.shape[1]
    same = True
    for k in range(n):
        bits[i, k] = rng_integers(rng, i, 2)
        goal[i, k] = rng_integers(rng, i, 2)
        same = same and bits[i, k] == goal[i, k]
    if same:  # the goal must differ from the start: flip one random bit of it
        k = rng_integers(rng, i, n)
        goal[i, k] ^= 1


@njit(cache=True, nogil=True)
def _observe(
    i: int, bits: np.ndarray, goal: np.ndarray, obs: np.ndarray
) -> None:  # pragma: no cover
    n = bits.shape[1]
    for k in range(n):
        obs[i, k] = bits[i, k]
        obs[i, n + k] = bits[i, k]
        obs[i, 2 * n + k] = goal[i, k]


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, bits: np.ndarray, goal: np.ndarray
) -> None:  # pragma: no cover - numba
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        _draw(i, bits, goal, rng)
        _observe(i, bits, goal, obs)


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, bits: np.ndarray, goal: np.ndarray, max_steps: int
) -> int:  # pragma: no cover - numba
    actions = io[ACTIONS]
    n = bits.shape[1]
    invalid = 0
    for i in range(lo, hi):
        a = actions[i]
        if a < 0 or a >= n:
            invalid += 1
        else:
            bits[i, a] ^= 1
        _judge(i, io, bits, goal, max_steps)
    return invalid


@njit(cache=True, nogil=True)
def _step_continuous(
    lo: int, hi: int, io: KernelIO, bits: np.ndarray, goal: np.ndarray, max_steps: int
) -> int:  # pragma: no cover - numba
    actions = io[ACTIONS]
    n = bits.shape[1]
    for i in range(lo, hi):
        for k in range(n):
            if actions[i, k] > 0.0:
                bits[i, k] ^= 1
        _judge(i, io, bits, goal, max_steps)
    return 0


@njit(cache=True, nogil=True)
def _judge(
    i: int, io: KernelIO, bits: np.ndarray, goal: np.ndarray, max_steps: int
) -> None:  # pragma: no cover - numba
    obs, rewards = io[OBSERVATIONS], io[REWARDS]
    terminals, truncations, rng = io[TERMINALS], io[TRUNCATIONS], io[RNG]
    ret, length, stats = io[EPISODE_RETURN], io[EPISODE_LENGTH], io[EPISODE_STATS]
    n = bits.shape[1]
    solved = True
    for k in range(n):
        if bits[i, k] != goal[i, k]:
            solved = False
            break
    reward = 0.0 if solved else -1.0
    rewards[i] = reward
    ret[i] += reward
    length[i] += 1
    truncated = (not solved) and length[i] >= max_steps
    terminals[i] = solved
    truncations[i] = truncated
    _observe(i, bits, goal, obs)
    if solved or truncated:
        stats[i, 3] += 1.0 if solved else 0.0
        end_episode(io, i, i, i + 1)
        _draw(i, bits, goal, rng)
        _observe(i, bits, goal, obs)


def bitflip_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """BitFlip's reward for goals of any leading shape: ``0`` where they match, else ``-1``.

    Example:
        >>> bitflip_reward(np.zeros((2, 3, 4)), np.zeros((2, 3, 4))).shape
        (2, 3)
    """
    achieved = np.asarray(achieved_goal)
    desired = np.asarray(desired_goal)
    match = np.all(np.abs(achieved - desired) < 0.5, axis=-1)
    return np.where(match, 0.0, -1.0).astype(np.float32)


class BitFlip(NativeEnv):
    """``bitflip-v1``: flip one of ``n`` bits per step until they equal the goal (Discrete(n)).

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        n: Number of bits (1 to 64).
        max_steps: Truncation step count (default ``n``, enough to solve every episode).
        continuous: Box actions in ``[-1, 1]^n`` instead of ``Discrete(n)``: every bit whose
            action is positive flips (the continuous variant used with SAC and TD3).
    """

    check_actions = False  # checks its own actions (live rows only, its own messages)

    score_keys = ("success",)
    solve_threshold = 0.95  # success rate

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        n: int = 8,
        max_steps: int | None = None,
        continuous: bool = False,
    ) -> None:
        if not 1 <= int(n) <= 64:
            raise APIUsageError(f"bitflip needs 1 <= n <= 64 bits, got n={n}")
        self.n = int(n)
        self.max_steps = self.n if max_steps is None else int(max_steps)
        if self.max_steps < 1:
            raise APIUsageError(f"max_steps must be >= 1, got {max_steps}")
        self.continuous = bool(continuous)
        self.goal_layout = GoalLayout(self.n, self.n)
        observation_space = spaces.Box(0.0, 1.0, (3 * self.n,), dtype=np.float32)
        self.dict_observation_space = self.goal_layout.dict_space(observation_space)
        super().__init__(
            num_envs,
            observation_space,
            (
                spaces.Box(-1.0, 1.0, (self.n,), dtype=np.float32)
                if self.continuous
                else spaces.Discrete(self.n)
            ),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``bits`` and ``goal``: uint8 ``[num_envs, n]``."""
        return {
            "bits": np.zeros((num_envs, self.n), dtype=np.uint8),
            "goal": np.zeros((num_envs, self.n), dtype=np.uint8),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh bits and goals for copies ``[lo, hi)``."""
        s = self.state
        _reset(lo, hi, self.io, s["bits"], s["goal"])

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        s = self.state
        kernel = _step_continuous if self.continuous else _step
        invalid = kernel(lo, hi, self.io, s["bits"], s["goal"], self.max_steps)
        if invalid:
            raise APIUsageError(
                f"bitflip actions must lie in [0, {self.n}); got {invalid} out-of-range actions "
                "(those rows did not flip a bit)"
            )

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None
    ) -> np.ndarray:
        """Rewards ``[...]`` for goals ``[..., n]`` of any leading shape (for relabelling)."""
        return bitflip_reward(achieved_goal, desired_goal)

    def render(self, row: int = 0) -> np.ndarray:
        """Two rows of cells: the bits (top) and the goal (bottom); white = 1."""
        cells = np.stack([self.state["bits"][row], self.state["goal"][row]]).astype(np.int64)
        palette = np.array([[30, 30, 30], [240, 240, 240]], dtype=np.uint8)
        return draw.grid(cells, palette, cell_size=16)
