"""Snake: many snakes per grid competing for food, each seeing an egocentric window (masks).

Each copy is a ``height x width`` grid walled at the border with ``num_snakes`` snakes and
``num_food`` food cells; rows are agent-major (row ``copy * num_snakes + k`` is snake ``k``).
Actions are Discrete(4): 0 up, 1 down, 2 left, 3 right (reversing into one's own neck keeps
the current heading). Every step the live snakes move one cell in index order: a snake whose
head enters a wall or any snake's body (its own included; tails move out of the way first)
dies, with reward ``death_reward`` (-1) and ``terminals`` True; eating food gives
``food_reward`` (+1) and grows the snake by one cell (up to ``max_length``); after the moves,
eaten food is replaced at random empty cells. A dead snake's body disappears; its row is
masked (``masks`` False, zero observations, zero rewards, its actions ignored) for
``respawn_delay`` steps, then it respawns with length 1 at a random empty cell and starts a new
episode (``masks`` True again). A life longer than ``max_steps`` is truncated: the snake keeps
going and a new episode starts from where it is.

Observation: the ``view x view`` window (default 11 x 11) centred on the snake's head,
flattened row-major, uint8 categories 0 empty, 1 food, 2 wall (or outside the grid), 3 own
body, 4 another snake.

Example:
    >>> env = Snake(num_envs=2, num_snakes=3, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, obs.dtype, env.num_agents
    ((6, 121), dtype('uint8'), 6)
    >>> int(obs[0, 60])  # the head, at the centre of its own view
    3
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
    MASKS,
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

__all__ = ["Snake"]

EMPTY, FOOD, WALL, OWN, OTHER = 0, 1, 2, 3, 4
_SNAKE = 3  # grid value of snake k's body is _SNAKE + k
_DR = np.array([-1, 1, 0, 0], dtype=np.int64)
_DC = np.array([0, 0, -1, 1], dtype=np.int64)
_OPPOSITE = np.array([1, 0, 3, 2], dtype=np.int64)
# params: radius, food_reward, death_reward, respawn_delay, max_steps, num_food
_RADIUS, _FOOD_REWARD, _DEATH_REWARD, _RESPAWN, _MAX_STEPS, _NUM_FOOD = range(6)


@njit(cache=True, nogil=True)
def _empty_cell(
    grid: np.ndarray, e: int, rng: np.ndarray, radius: int
) -> tuple[int, int]:  # pragma: no cover
    """A random empty cell of copy ``e`` (``(-1, -1)`` after 64 failed draws)."""
    height = grid.shape[1] - 2 * radius
    width = grid.shape[2] - 2 * radius
    for _ in range(64):
        r = radius + rng_integers(rng, e, height)
        c = radius + rng_integers(rng, e, width)
        if grid[e, r, c] == EMPTY:
            return r, c
    return -1, -1


@njit(cache=True, nogil=True)
def _spawn(
    e: int, k: int, grid: np.ndarray, body: np.ndarray, head: np.ndarray, length: np.ndarray,
    heading: np.ndarray, alive: np.ndarray, rng: np.ndarray, radius: int,
) -> bool:  # pragma: no cover - numba  # fmt: skip
    r, c = _empty_cell(grid, e, rng, radius)
    if r < 0:
        return False
    grid[e, r, c] = _SNAKE + k
    head[e, k] = 0
    length[e, k] = 1
    body[e, k, 0, 0] = r
    body[e, k, 0, 1] = c
    heading[e, k] = rng_integers(rng, e, 4)
    alive[e, k] = True
    return True


@njit(cache=True, nogil=True)
def _view(
    e: int, k: int, row: int, grid: np.ndarray, body: np.ndarray, head: np.ndarray,
    out: np.ndarray, radius: int, lut: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    """Write snake ``k``'s window into ``out[row]``; ``lut[k]`` maps grid values to categories."""
    hr = body[e, k, head[e, k], 0]
    hc = body[e, k, head[e, k], 1]
    size = 2 * radius + 1
    c0 = hc - radius
    dst = out[row]
    table = lut[k]
    for dr in range(size):
        src = grid[e, hr - radius + dr]
        base = dr * size
        for dc in range(size):
            dst[base + dc] = table[src[c0 + dc]]


@njit(cache=True, nogil=True)
def _clear_body(
    e: int, k: int, grid: np.ndarray, body: np.ndarray, head: np.ndarray, length: np.ndarray
) -> None:  # pragma: no cover - numba
    cap = body.shape[2]
    for j in range(length[e, k]):
        idx = (head[e, k] - j) % cap
        grid[e, body[e, k, idx, 0], body[e, k, idx, 1]] = EMPTY
    length[e, k] = 0


@njit(cache=True, nogil=True)
def _top_up_food(
    e: int, grid: np.ndarray, food: np.ndarray, rng: np.ndarray, params: np.ndarray
) -> None:  # pragma: no cover - numba
    """Place food at random empty cells until copy ``e`` has ``num_food`` (or none is found)."""
    radius = int(params[_RADIUS])
    while food[e] < params[_NUM_FOOD]:
        r, c = _empty_cell(grid, e, rng, radius)
        if r < 0:
            return
        grid[e, r, c] = FOOD
        food[e] += 1


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, grid: np.ndarray, body: np.ndarray, head: np.ndarray,
    length: np.ndarray, heading: np.ndarray, alive: np.ndarray, timer: np.ndarray,
    food: np.ndarray, lut: np.ndarray, params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    obs, masks, rng = io[OBSERVATIONS], io[MASKS], io[RNG]
    radius = int(params[_RADIUS])
    num_snakes = body.shape[1]
    for e in range(lo, hi):
        grid[e, :, :] = WALL
        grid[e, radius:-radius, radius:-radius] = EMPTY
        for k in range(num_snakes):
            alive[e, k] = False
            timer[e, k] = 0
            length[e, k] = 0
        for k in range(num_snakes):
            _spawn(e, k, grid, body, head, length, heading, alive, rng, radius)
        food[e] = 0
        _top_up_food(e, grid, food, rng, params)
        for k in range(num_snakes):
            row = e * num_snakes + k
            masks[row] = alive[e, k]
            if alive[e, k]:
                _view(e, k, row, grid, body, head, obs, radius, lut)
            else:
                obs[row, :] = 0


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, grid: np.ndarray, body: np.ndarray, head: np.ndarray,
    length: np.ndarray, heading: np.ndarray, alive: np.ndarray, timer: np.ndarray,
    food: np.ndarray, lut: np.ndarray, params: np.ndarray,
) -> int:  # pragma: no cover - numba  # fmt: skip
    actions, obs, masks, rng = io[ACTIONS], io[OBSERVATIONS], io[MASKS], io[RNG]
    rewards, terminals, truncations = io[REWARDS], io[TERMINALS], io[TRUNCATIONS]
    ret, ep_length, stats = io[EPISODE_RETURN], io[EPISODE_LENGTH], io[EPISODE_STATS]
    radius = int(params[_RADIUS])
    num_snakes = body.shape[1]
    cap = body.shape[2]
    invalid = 0
    for e in range(lo, hi):
        for k in range(num_snakes):
            row = e * num_snakes + k
            rewards[row] = 0.0
            terminals[row] = False
            truncations[row] = False
            if not alive[e, k]:
                timer[e, k] -= 1
                if timer[e, k] <= 0:
                    _spawn(e, k, grid, body, head, length, heading, alive, rng, radius)
                continue
            a = actions[row]
            if a < 0 or a >= 4:
                invalid += 1
            elif not (length[e, k] > 1 and a == _OPPOSITE[heading[e, k]]):
                heading[e, k] = a
            d = heading[e, k]
            hr = body[e, k, head[e, k], 0] + _DR[d]
            hc = body[e, k, head[e, k], 1] + _DC[d]
            eat = grid[e, hr, hc] == FOOD
            size = length[e, k]
            if not eat or length[e, k] == cap:  # the tail moves out of the way
                tail = (head[e, k] - length[e, k] + 1) % cap
                grid[e, body[e, k, tail, 0], body[e, k, tail, 1]] = EMPTY
                length[e, k] -= 1
            target = grid[e, hr, hc]
            ep_length[row] += 1
            if target == WALL or target >= _SNAKE:
                reward = params[_DEATH_REWARD]
                rewards[row] = reward
                ret[row] += reward
                terminals[row] = True
                # the view that ended the life (the observe pass below zeroes the row)
                _view(e, k, row, grid, body, head, obs, radius, lut)
                obs[row, radius * (2 * radius + 1) + radius] = OWN
                _clear_body(e, k, grid, body, head, length)
                alive[e, k] = False
                timer[e, k] = int(params[_RESPAWN])
                stats[e, 3] += size
                end_episode(io, e, row, row + 1)
                continue
            head[e, k] = (head[e, k] + 1) % cap
            body[e, k, head[e, k], 0] = hr
            body[e, k, head[e, k], 1] = hc
            grid[e, hr, hc] = _SNAKE + k
            length[e, k] += 1
            if eat:
                reward = params[_FOOD_REWARD]
                rewards[row] = reward
                ret[row] += reward
                food[e] -= 1
            if ep_length[row] >= params[_MAX_STEPS]:
                truncations[row] = True
        _top_up_food(e, grid, food, rng, params)
        # observe once every snake has moved
        for k in range(num_snakes):
            row = e * num_snakes + k
            masks[row] = alive[e, k]
            if alive[e, k]:
                _view(e, k, row, grid, body, head, obs, radius, lut)
                if truncations[row]:
                    stats[e, 3] += length[e, k]
                    end_episode(io, e, row, row + 1)
            elif terminals[row]:
                obs[row, :] = 0
    return invalid


class Snake(NativeEnv):
    """``snake-v1``: multi-agent snake; rows are ``num_envs x num_snakes`` snakes (Discrete(4)).

    Args:
        num_envs: Number of grids (rows = ``num_envs * num_snakes``).
        threads: Threads stepping disjoint ranges of grids.
        seed: Seed of the first reset (grid ``g`` uses ``seed + g``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch (a multiple of ``num_snakes``; ``None``: all).
        width: Grid width in cells (walls excluded).
        height: Grid height in cells.
        num_snakes: Snakes per grid.
        num_food: Food cells kept on each grid.
        view: Side of the square egocentric window (odd).
        max_length: Longest snake (ring-buffer capacity).
        respawn_delay: Steps a dead snake stays masked before respawning.
        food_reward: Reward for eating food.
        death_reward: Reward on the step a snake dies.
        max_steps: Truncation length of one life.
    """

    check_actions = False  # checks its own actions (live rows only, its own messages)

    score_keys = ("length",)
    solve_threshold = 10.0  # mean episode return (food eaten minus deaths) per life

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        width: int = 24,
        height: int = 24,
        num_snakes: int = 4,
        num_food: int = 8,
        view: int = 11,
        max_length: int = 64,
        respawn_delay: int = 10,
        food_reward: float = 1.0,
        death_reward: float = -1.0,
        max_steps: int = 1000,
    ) -> None:
        if view < 3 or view % 2 == 0:
            raise APIUsageError(f"view must be an odd number of cells >= 3, got {view}")
        if min(width, height) < 2 or num_snakes < 1 or num_food < 0 or max_length < 1:
            raise APIUsageError(
                "snake needs width, height >= 2, num_snakes >= 1, num_food >= 0 and "
                f"max_length >= 1, got {width}, {height}, {num_snakes}, {num_food}, {max_length}"
            )
        if num_snakes > 120 or respawn_delay < 1 or max_steps < 1:
            raise APIUsageError(
                "snake needs num_snakes <= 120, respawn_delay >= 1 and max_steps >= 1, got "
                f"{num_snakes}, {respawn_delay}, {max_steps}"
            )
        self.width, self.height = int(width), int(height)
        self.num_snakes = int(num_snakes)
        self.max_length = int(max_length)
        self.radius = int(view) // 2
        self.params = np.array(
            [self.radius, food_reward, death_reward, respawn_delay, max_steps, num_food],
            dtype=np.float64,
        )
        # grid value -> view category, per snake: snake k sees its own body as OWN
        self._lut = np.full((self.num_snakes, 256), OTHER, dtype=np.uint8)
        self._lut[:, :_SNAKE] = [EMPTY, FOOD, WALL]
        self._lut[np.arange(self.num_snakes), _SNAKE + np.arange(self.num_snakes)] = OWN
        super().__init__(
            num_envs,
            spaces.Box(0, OTHER, (view * view,), dtype=np.uint8),
            spaces.Discrete(4),
            agents_per_env=self.num_snakes,
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``grid`` uint8 (padded by the view radius with walls), snake ``body`` ring buffers
        ``[E, S, max_length, 2]``, ``head``/``length``/``heading``/``timer`` ``[E, S]``,
        ``alive`` bool ``[E, S]`` and the ``food`` count ``[E]``."""
        pad = 2 * self.radius
        shape = (num_envs, self.num_snakes)
        return {
            "grid": np.zeros((num_envs, self.height + pad, self.width + pad), dtype=np.uint8),
            "body": np.zeros((*shape, self.max_length, 2), dtype=np.int64),
            "head": np.zeros(shape, dtype=np.int64),
            "length": np.zeros(shape, dtype=np.int64),
            "heading": np.zeros(shape, dtype=np.int64),
            "timer": np.zeros(shape, dtype=np.int64),
            "alive": np.zeros(shape, dtype=np.bool_),
            "food": np.zeros(num_envs, dtype=np.int64),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Clear grids ``[lo, hi)``, spawn every snake and the food."""
        s = self.state
        _reset(
            lo, hi, self.io, s["grid"], s["body"], s["head"], s["length"], s["heading"],
            s["alive"], s["timer"], s["food"], self._lut, self.params,
        )  # fmt: skip

    def step_envs(self, lo: int, hi: int) -> None:
        """Step grids ``[lo, hi)``."""
        s = self.state
        invalid = _step(
            lo, hi, self.io, s["grid"], s["body"], s["head"], s["length"], s["heading"],
            s["alive"], s["timer"], s["food"], self._lut, self.params,
        )  # fmt: skip
        if invalid:
            raise APIUsageError(
                f"snake actions must be 0, 1, 2 or 3 for live snakes; got {invalid} others "
                "(those snakes kept their heading)"
            )

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state`, including which rows are live (``masks``)."""
        super().set_state(state)
        self.masks[:] = self.state["alive"].reshape(-1)

    def render(self, row: int = 0) -> np.ndarray:
        """The grid holding row ``row``: walls grey, food green, that row's snake white."""
        e, k = divmod(row, self.num_snakes)
        r = self.radius
        cells = self.state["grid"][e, r - 1 : r + self.height + 1, r - 1 : r + self.width + 1]
        cells = cells.astype(np.int64)
        colors = cells.copy()
        colors[cells >= _SNAKE] = 4
        colors[cells == _SNAKE + k] = 3
        palette = np.array(
            [[20, 20, 20], [60, 200, 60], [120, 120, 120], [250, 250, 250], [200, 80, 200]],
            dtype=np.uint8,
        )
        return draw.grid(colors, palette, cell_size=8)
