"""deep-sea-v1: bsuite's DeepSea, the exploration probe where dithering fails exponentially.

An ``N x N`` grid seen as a one-hot image of the agent's cell. The agent starts at the top-left
cell and descends one row per step, so every episode lasts exactly ``N`` steps. Each step it
moves one column left or right (clipped at the walls); which of the two actions means "right"
is drawn once per cell from ``mapping_seed``, so no fixed action sequence works on every
instance. Moving right costs ``move_cost / N``; moving right from the last column (only
reachable by moving right at every step) pays ``+1``. The optimal return is ``1 - move_cost``;
any other policy earns at most ``0``, and a uniformly random one finds the reward with
probability ``2**-N`` per episode. After the last step the observation is all zeros (the agent
left the grid), as in bsuite.

Every copy of one env shares the mapping (one MDP per ``mapping_seed``); copies differ only in
the random stream (unused: the dynamics are deterministic). The per-episode score ``success``
is 1 when the episode reached the reward, so ``infos`` report the fraction of episodes that
did, bsuite's measure of progress.

Example:
    >>> env = DeepSea(num_envs=2, size=3, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, obs[0].reshape(3, 3)[0].tolist()
    ((2, 9), [1.0, 0.0, 0.0])
    >>> right = env.right_actions()  # the action meaning "right", per cell
    >>> total = np.zeros(2)
    >>> for step in range(3):  # always right: the treasure
    ...     a = np.array([right[step, step]] * 2, dtype=np.int32)
    ...     _, rewards, terminals, _, _ = env.step(a)
    ...     total += rewards
    >>> total.round(3).tolist(), terminals.tolist(), env.flush_infos()[0]["success"]
    ([0.99, 0.99], [True, True], 1.0)
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError
from fugu.envs import render as draw
from fugu.envs.native import (
    ACTIONS,
    EPISODE_LENGTH,
    EPISODE_RETURN,
    EPISODE_STATS,
    OBSERVATIONS,
    REWARDS,
    TERMINALS,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
)

__all__ = ["DeepSea"]


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, position: np.ndarray, size: int
) -> None:  # pragma: no cover - numba
    obs = io[OBSERVATIONS]
    for i in range(lo, hi):
        position[i, 0] = 0
        position[i, 1] = 0
        for k in range(size * size):
            obs[i, k] = 0.0
        obs[i, 0] = 1.0


@njit(cache=True, nogil=True)
def _step(
    lo: int,
    hi: int,
    io: KernelIO,
    position: np.ndarray,
    right_action: np.ndarray,
    size: int,
    move_cost: float,
) -> int:  # pragma: no cover - numba
    """Step copies ``[lo, hi)``; returns the number of out-of-range actions."""
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations, stats = io[TERMINALS], io[TRUNCATIONS], io[EPISODE_STATS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    invalid = 0
    for i in range(lo, hi):
        a = actions[i]
        if a != 0 and a != 1:
            invalid += 1
        row, col = position[i, 0], position[i, 1]
        obs[i, row * size + col] = 0.0
        reward = 0.0
        success = False
        if a == right_action[row, col]:
            if col == size - 1:
                reward += 1.0
                success = True
            col = min(col + 1, size - 1)
            reward -= move_cost / size
        else:
            col = max(col - 1, 0)
        row += 1
        position[i, 0], position[i, 1] = row, col
        rewards[i] = reward
        ret[i] += reward
        length[i] += 1
        truncations[i] = False
        done = row == size
        terminals[i] = done
        if success:
            stats[i, 3] += 1.0
        if done:
            end_episode(io, i, i, i + 1)  # the observation is all zeros: off the grid
            _reset(i, i + 1, io, position, size)
        else:
            obs[i, row * size + col] = 1.0
    return invalid


class DeepSea(NativeEnv):
    """bsuite's DeepSea of size ``N`` (see the module docstring).

    Args:
        num_envs: Env copies.
        threads: Stepping threads.
        seed: Seed of the first reset (the dynamics use no randomness).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        size: Grid side ``N`` (episode length), ``>= 2``.
        mapping_seed: Seed of the per-cell action-to-direction mapping (one MDP per value,
            shared by every copy and by every shard built with it).
        move_cost: Total cost of moving right at every step (each right move costs
            ``move_cost / N``); bsuite uses 0.01.
    """

    score_keys = ("success",)
    solve_threshold = 0.9  # fraction of recent episodes that reach the treasure

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        size: int = 10,
        mapping_seed: int = 0,
        move_cost: float = 0.01,
    ) -> None:
        if int(size) < 2:
            raise APIUsageError(f"deep-sea needs size >= 2, got size={size}")
        if move_cost < 0:
            raise APIUsageError(f"deep-sea move_cost must be >= 0, got {move_cost}")
        self.size = int(size)
        self.mapping_seed = int(mapping_seed)
        self.move_cost = float(move_cost)
        rng = np.random.default_rng(self.mapping_seed)
        self.right_action = rng.integers(0, 2, size=(self.size, self.size)).astype(np.int32)
        observation_space = spaces.Box(0.0, 1.0, (self.size * self.size,), dtype=np.float32)
        super().__init__(
            num_envs,
            observation_space,
            spaces.Discrete(2),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``position``: int64 ``[num_envs, 2]`` (row, column)."""
        return {"position": np.zeros((num_envs, 2), dtype=np.int64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Put copies ``[lo, hi)`` at the top-left cell."""
        _reset(lo, hi, self.io, self.state["position"], self.size)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        invalid = _step(
            lo,
            hi,
            self.io,
            self.state["position"],
            self.right_action,
            self.size,
            self.move_cost,
        )
        if invalid:
            raise APIUsageError(
                f"deep-sea actions must be 0 or 1; got {invalid} out-of-range actions "
                "(they moved left)"
            )

    def right_actions(self) -> np.ndarray:
        """``[N, N]`` int32: the action that moves right in each cell (row, column)."""
        return self.right_action.copy()

    def positions(self) -> np.ndarray:
        """``[num_envs, 2]`` (row, column) of every copy, e.g. for visitation heatmaps."""
        return self.state["position"].copy()

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(N, N)``: the grid whose cells :meth:`cell_observations` lists, row-major."""
        return (self.size, self.size)

    def cell_observations(self) -> np.ndarray:
        """``[N * N, N * N]`` float32: the observation of every cell, row-major (for novelty
        heatmaps, :func:`fugu.explore.heatmap.novelty_heatmap`)."""
        return np.eye(self.size * self.size, dtype=np.float32)

    def render(self, row: int = 0) -> np.ndarray:
        """The grid: the agent (yellow), the treasure cell (green), water (blue)."""
        cells = np.zeros((self.size, self.size), dtype=np.int64)
        cells[self.size - 1, self.size - 1] = 2
        r, c = self.state["position"][row]
        if r < self.size:
            cells[r, c] = 1
        palette = np.array([[20, 40, 110], [240, 220, 40], [40, 200, 80]], dtype=np.uint8)
        return draw.grid(cells, palette, cell_size=max(4, 160 // self.size))
