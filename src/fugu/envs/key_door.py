"""key-door-v1: two rooms joined by a locked door; fetch the key, open the door, reach the goal.

A sparse-reward gridworld with pixel-like observations, fugu's second exploration probe after
DeepSea. The grid is ``H = room_size + 2`` rows by ``W = 2 * room_size + 3`` columns: an outer
wall, a left room and a right room of ``room_size x room_size`` floor cells each, and a wall
column between them with one door in it. The agent starts at the left room's top-left cell,
the key lies at its bottom-left cell, the door is in the wall's top cell and the goal is the
right room's bottom-right cell:

```
#############        A agent     K key
#A....D.....#        D door      G goal
#.....#.....#
#.....#.....#
#.....#.....#
#K....#....G#
#############
```

Actions are ``Discrete(4)``: up, right, down, left. Moving into a wall (or into the closed door
without the key) stays in place; stepping onto the key picks it up; stepping into the door
while holding the key opens it for good (the agent moves onto the open door cell). Reaching the
goal ends the episode with the only reward, ``1 - 0.9 * t / max_steps`` at step ``t`` (the
MiniGrid convention: sooner is better); after ``max_steps`` steps the episode is truncated with
nothing. Dithering rarely strings the three sub-goals together in time, and then only by
luck: PPO alone does not learn it, PPO with RND does (``docs/exploration.md``).

Observations are a ``uint8 [5, H, W]`` image, one channel per object type (wall, key, closed
door, agent, goal) at 255 where the object is: what a CNN (``policy.kind = "cnn"``) takes, and
flattened by an MLP policy. The key's channel empties once it is held and the door's once it is
open, so the image is the whole state. The per-episode score ``success`` is 1 when the episode
reached the goal. :meth:`KeyDoor.positions` and :meth:`KeyDoor.cell_observations` serve novelty
heatmaps as on DeepSea.

Example:
    >>> env = KeyDoor(num_envs=1, room_size=2, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.positions().tolist()
    ((1, 5, 4, 7), [[1, 1]])
    >>> UP, RIGHT, DOWN, LEFT = range(4)
    >>> for a in [RIGHT, RIGHT]:  # the door is shut: the agent stays beside it
    ...     _ = env.step(np.array([a], dtype=np.int32))
    >>> env.positions().tolist()
    [[1, 2]]
    >>> for a in [DOWN, LEFT, UP, RIGHT, RIGHT, RIGHT, RIGHT, DOWN]:  # key, door, goal
    ...     _, rewards, terminals, _, _ = env.step(np.array([a], dtype=np.int32))
    >>> float(rewards[0]) > 0, bool(terminals[0]), env.flush_infos()[0]["success"]
    (True, True, 1.0)
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

__all__ = ["KeyDoor"]

WALL, KEY, DOOR, AGENT, GOAL = range(5)
CHANNELS = 5
ON = 255
# (row, column) offsets of up, right, down, left
_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
# state columns: row, column, has key, door open, steps taken
ROW, COL, HAS_KEY, DOOR_OPEN, STEPS = range(5)


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, state: np.ndarray, background: np.ndarray, layout: np.ndarray
) -> None:  # pragma: no cover - numba
    """``layout``: start row, start column, key row, key column, door row, door column."""
    obs = io[OBSERVATIONS]
    channels, height, width = background.shape
    plane = height * width
    for i in range(lo, hi):
        k = 0
        for c in range(channels):
            for r in range(height):
                for q in range(width):
                    obs[i, k] = background[c, r, q]
                    k += 1
        state[i, ROW], state[i, COL] = layout[0], layout[1]
        state[i, HAS_KEY], state[i, DOOR_OPEN], state[i, STEPS] = 0, 0, 0
        obs[i, AGENT * plane + layout[0] * width + layout[1]] = ON


@njit(cache=True, nogil=True)
def _step(
    lo: int,
    hi: int,
    io: KernelIO,
    state: np.ndarray,
    background: np.ndarray,
    layout: np.ndarray,
    moves: np.ndarray,
    max_steps: int,
) -> int:  # pragma: no cover - numba
    """Step copies ``[lo, hi)``; returns the number of out-of-range actions."""
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations, stats = io[TERMINALS], io[TRUNCATIONS], io[EPISODE_STATS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    width = background.shape[2]
    plane = background.shape[1] * width
    key_row, key_col, door_row, door_col = layout[2], layout[3], layout[4], layout[5]
    invalid = 0
    for i in range(lo, hi):
        a = actions[i]
        if a < 0 or a > 3:
            invalid += 1
            a = 0
        row, col = state[i, ROW], state[i, COL]
        new_row, new_col = row + moves[a, 0], col + moves[a, 1]
        blocked = background[WALL, new_row, new_col] != 0
        if new_row == door_row and new_col == door_col and state[i, DOOR_OPEN] == 0:
            if state[i, HAS_KEY] != 0:
                state[i, DOOR_OPEN] = 1
                obs[i, DOOR * plane + door_row * width + door_col] = 0
            else:
                blocked = True
        if not blocked:
            obs[i, AGENT * plane + row * width + col] = 0
            row, col = new_row, new_col
            state[i, ROW], state[i, COL] = row, col
            obs[i, AGENT * plane + row * width + col] = ON
            if row == key_row and col == key_col and state[i, HAS_KEY] == 0:
                state[i, HAS_KEY] = 1
                obs[i, KEY * plane + row * width + col] = 0
        state[i, STEPS] += 1
        steps = state[i, STEPS]
        success = background[GOAL, row, col] != 0
        reward = 1.0 - 0.9 * steps / max_steps if success else 0.0
        rewards[i] = reward
        ret[i] += reward
        length[i] += 1
        terminals[i] = success
        truncations[i] = (not success) and steps >= max_steps
        if success or steps >= max_steps:
            if success:
                stats[i, 3] += 1.0
            end_episode(io, i, i, i + 1)
            _reset(i, i + 1, io, state, background, layout)
    return invalid


class KeyDoor(NativeEnv):
    """Two rooms, a key, a locked door and a goal (see the module docstring).

    Args:
        num_envs: Env copies.
        threads: Stepping threads.
        seed: Seed of the first reset (the dynamics use no randomness).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        room_size: Floor cells per side of each room, ``>= 2``.
        max_steps: Steps before an episode is truncated (``None``: ``3 * room_size ** 2``; at
            the default size a uniformly random policy reaches the goal in time once in about
            400 episodes).
    """

    score_keys = ("success",)
    solve_threshold = 0.9  # fraction of recent episodes that reach the goal

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        room_size: int = 5,
        max_steps: int | None = None,
    ) -> None:
        if int(room_size) < 2:
            raise APIUsageError(f"key-door needs room_size >= 2, got room_size={room_size}")
        self.room_size = n = int(room_size)
        self.max_steps = 3 * n * n if max_steps is None else int(max_steps)
        if self.max_steps < 1:
            raise APIUsageError(f"key-door max_steps must be >= 1, got {max_steps}")
        self.height, self.width = n + 2, 2 * n + 3
        wall_col = n + 1
        # start row, start column, key row, key column, door row, door column
        self.layout = np.array([1, 1, n, 1, 1, wall_col], dtype=np.int64)
        self.goal = (n, 2 * n + 1)
        background = np.zeros((CHANNELS, self.height, self.width), dtype=np.uint8)
        background[WALL, [0, -1], :] = ON
        background[WALL, :, [0, -1]] = ON
        background[WALL, :, wall_col] = ON
        background[WALL, 1, wall_col] = 0
        background[DOOR, 1, wall_col] = ON
        background[KEY, n, 1] = ON
        background[GOAL, self.goal[0], self.goal[1]] = ON
        self.background = background
        observation_space = spaces.Box(0, ON, (CHANNELS, self.height, self.width), dtype=np.uint8)
        super().__init__(
            num_envs,
            observation_space,
            spaces.Discrete(4),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``cells``: int64 ``[num_envs, 5]`` (row, column, has key, door open, steps taken)."""
        return {"cells": np.zeros((num_envs, 5), dtype=np.int64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Put copies ``[lo, hi)`` at the start, the key on the floor, the door shut."""
        _reset(lo, hi, self.io, self.state["cells"], self.background, self.layout)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        invalid = _step(
            lo,
            hi,
            self.io,
            self.state["cells"],
            self.background,
            self.layout,
            _MOVES,
            self.max_steps,
        )
        if invalid:
            raise APIUsageError(
                f"key-door actions must be in [0, 4); got {invalid} out-of-range actions "
                "(they moved up)"
            )

    def positions(self) -> np.ndarray:
        """``[num_envs, 2]`` (row, column) of every copy, e.g. for visitation heatmaps."""
        return self.state["cells"][:, :2].copy()

    def holding_key(self) -> np.ndarray:
        """``[num_envs]`` bool: which copies hold the key."""
        return self.state["cells"][:, HAS_KEY] != 0

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(H, W)``: the grid whose cells :meth:`cell_observations` lists, row-major."""
        return (self.height, self.width)

    def cell_observations(self, holding_key: bool = False) -> np.ndarray:
        """``[H * W, 5, H, W]`` uint8: the observation with the agent on each cell, row-major
        (for novelty heatmaps, :func:`fugu.explore.heatmap.novelty_heatmap`).

        ``holding_key``: the key picked up and the door still shut (else the first layout).
        """
        cells = self.height * self.width
        obs = np.repeat(self.background[None], cells, axis=0)
        if holding_key:
            obs[:, KEY] = 0
        agent = obs[:, AGENT].reshape(cells, cells)
        agent[np.arange(cells), np.arange(cells)] = ON
        return obs

    def render(self, row: int = 0) -> np.ndarray:
        """The grid: walls (grey), key (yellow), door (brown), agent (red), goal (green)."""
        image = self.observations[row]
        cells = np.zeros((self.height, self.width), dtype=np.int64)
        for value, channel in enumerate((WALL, KEY, DOOR, GOAL, AGENT), start=1):
            cells[image[channel] != 0] = value
        palette = np.array(
            [[10, 10, 10], [120, 120, 120], [240, 210, 30], [140, 80, 30], [40, 200, 80],
             [220, 40, 40]],
            dtype=np.uint8,
        )  # fmt: skip
        return draw.grid(cells, palette, cell_size=max(4, 240 // self.width))
