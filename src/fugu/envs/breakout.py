"""Breakout: a compact, integer-exact Breakout (paddle, ball, bricks) for MLP or CNN policies.

The screen is ``32`` pixels wide and ``42`` high. A wall of ``4 x 8`` bricks (each 4 x 2 pixels)
spans rows 8-15; the paddle (6 pixels wide) slides along row 40, 2 pixels per step; the
one-pixel ball moves one pixel along each axis per step (``vx, vy`` in ``{-1, +1}``). Per step:
the paddle moves (Discrete(3): 0 stay, 1 left, 2 right); the ball moves horizontally
(bouncing off the side walls, or off a brick, which breaks: reward +1), then vertically
(bouncing off the top wall, a brick, or the paddle, which sends it left from the paddle's left
half and right from its right half). A ball that passes the paddle costs a life and is served
again from row 20 at a random column, moving down; losing the last of ``lives`` (3) lives or
breaking every brick terminates the episode; episodes are truncated after ``max_steps`` (3000).

Observations:

* ``obs_mode="vector"`` (default, for MLPs): float32 ``[38]`` = paddle centre / 32, ball x / 32,
  ball y / 42, ``vx``, ``vy``, lives / ``lives``, then one bit per brick (row-major).
* ``obs_mode="pixels"`` (for CNNs): uint8 ``[1, 42, 32]`` = bricks 128, paddle 200, ball 255.

Example:
    >>> env = Breakout(num_envs=2, seed=0)
    >>> env.reset()[0].shape
    (2, 38)
    >>> Breakout(num_envs=2, obs_mode="pixels", seed=0).reset()[0].shape
    (2, 1, 42, 32)
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
    REWARDS,
    RNG,
    TERMINALS,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
    rng_integers,
)

__all__ = ["Breakout", "frame"]

WIDTH, HEIGHT = 32, 42
BRICK_ROWS, BRICK_COLS, BRICK_W, BRICK_H, BRICK_TOP = 4, 8, 4, 2, 8
PADDLE_W, PADDLE_Y, PADDLE_SPEED = 6, 40, 2
SERVE_Y = 20
BRICK_PIXEL, PADDLE_PIXEL, BALL_PIXEL = 128, 200, 255
VECTOR_SIZE = 6 + BRICK_ROWS * BRICK_COLS
# columns of the int64 state ``objects``: paddle x (left pixel), ball x, ball y, vx, vy, lives,
# bricks left
_PX, _BX, _BY, _VX, _VY, _LIVES, _LEFT = range(7)


@njit(cache=True, nogil=True, inline="always")
def _brick_at(bricks: np.ndarray, i: int, x: int, y: int) -> int:  # pragma: no cover - numba
    """Index ``row * 8 + col`` of the live brick covering pixel ``(x, y)``, else -1."""
    if y < BRICK_TOP or y >= BRICK_TOP + BRICK_ROWS * BRICK_H or x < 0 or x >= WIDTH:
        return -1
    b = ((y - BRICK_TOP) // BRICK_H) * BRICK_COLS + x // BRICK_W
    return b if bricks[i, b] else -1


@njit(cache=True, nogil=True)
def _serve(i: int, objects: np.ndarray, rng: np.ndarray) -> None:  # pragma: no cover - numba
    objects[i, _BX] = 4 + rng_integers(rng, i, WIDTH - 8)
    objects[i, _BY] = SERVE_Y
    objects[i, _VX] = 1 if rng_integers(rng, i, 2) else -1
    objects[i, _VY] = 1


@njit(cache=True, nogil=True)
def _new_episode(
    i: int, objects: np.ndarray, bricks: np.ndarray, rng: np.ndarray, lives: int
) -> None:  # pragma: no cover - numba
    for b in range(BRICK_ROWS * BRICK_COLS):
        bricks[i, b] = 1
    objects[i, _PX] = (WIDTH - PADDLE_W) // 2
    objects[i, _LIVES] = lives
    objects[i, _LEFT] = BRICK_ROWS * BRICK_COLS
    _serve(i, objects, rng)


@njit(cache=True, nogil=True)
def _vector(
    i: int, objects: np.ndarray, bricks: np.ndarray, obs: np.ndarray, lives: int
) -> None:  # pragma: no cover - numba
    obs[i, 0] = (objects[i, _PX] + PADDLE_W / 2) / WIDTH
    obs[i, 1] = objects[i, _BX] / WIDTH
    obs[i, 2] = objects[i, _BY] / HEIGHT
    obs[i, 3] = objects[i, _VX]
    obs[i, 4] = objects[i, _VY]
    obs[i, 5] = objects[i, _LIVES] / lives
    for b in range(BRICK_ROWS * BRICK_COLS):
        obs[i, 6 + b] = bricks[i, b]


@njit(cache=True, nogil=True)
def _paint(
    i: int, objects: np.ndarray, bricks: np.ndarray, img: np.ndarray
) -> None:  # pragma: no cover - numba
    """Draw the whole frame of copy ``i`` into ``img[i, 0]``."""
    img[i, 0, :, :] = 0
    for b in range(BRICK_ROWS * BRICK_COLS):
        if bricks[i, b]:
            y0 = BRICK_TOP + (b // BRICK_COLS) * BRICK_H
            x0 = (b % BRICK_COLS) * BRICK_W
            img[i, 0, y0 : y0 + BRICK_H, x0 : x0 + BRICK_W] = BRICK_PIXEL
    px = objects[i, _PX]
    img[i, 0, PADDLE_Y, px : px + PADDLE_W] = PADDLE_PIXEL
    img[i, 0, objects[i, _BY], objects[i, _BX]] = BALL_PIXEL


@njit(cache=True, nogil=True)
def _break(
    i: int, b: int, bricks: np.ndarray, objects: np.ndarray, img: np.ndarray, pixels: bool
) -> None:  # pragma: no cover - numba
    bricks[i, b] = 0
    objects[i, _LEFT] -= 1
    if pixels:
        y0 = BRICK_TOP + (b // BRICK_COLS) * BRICK_H
        x0 = (b % BRICK_COLS) * BRICK_W
        img[i, 0, y0 : y0 + BRICK_H, x0 : x0 + BRICK_W] = 0


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, objects: np.ndarray, bricks: np.ndarray, vec: np.ndarray,
    img: np.ndarray, pixels: bool, lives: int,
) -> None:  # pragma: no cover - numba  # fmt: skip
    rng = io[RNG]
    for i in range(lo, hi):
        _new_episode(i, objects, bricks, rng, lives)
        if pixels:
            _paint(i, objects, bricks, img)
        else:
            _vector(i, objects, bricks, vec, lives)


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, objects: np.ndarray, bricks: np.ndarray, vec: np.ndarray,
    img: np.ndarray, pixels: bool, lives: int, max_steps: int,
) -> int:  # pragma: no cover - numba  # fmt: skip
    """``vec`` and ``img`` are the observation rows as vectors or frames (the other is empty)."""
    actions, rewards, rng = io[ACTIONS], io[REWARDS], io[RNG]
    terminals, truncations = io[TERMINALS], io[TRUNCATIONS]
    ret, length, stats = io[EPISODE_RETURN], io[EPISODE_LENGTH], io[EPISODE_STATS]
    invalid = 0
    for i in range(lo, hi):
        a = actions[i]
        if pixels:  # erase the moving objects; the bricks stay painted
            img[i, 0, objects[i, _BY], objects[i, _BX]] = 0
            img[i, 0, PADDLE_Y, :] = 0
        if a == 1:
            objects[i, _PX] = max(0, objects[i, _PX] - PADDLE_SPEED)
        elif a == 2:
            objects[i, _PX] = min(WIDTH - PADDLE_W, objects[i, _PX] + PADDLE_SPEED)
        elif a != 0:
            invalid += 1
        reward = 0.0
        x = objects[i, _BX]
        y = objects[i, _BY]
        # horizontal move
        nx = x + objects[i, _VX]
        if nx < 0 or nx >= WIDTH:
            objects[i, _VX] = -objects[i, _VX]
            nx = x + objects[i, _VX]
        b = _brick_at(bricks, i, nx, y)
        if b >= 0:
            _break(i, b, bricks, objects, img, pixels)
            reward += 1.0
            objects[i, _VX] = -objects[i, _VX]
            nx = x
        x = nx
        # vertical move
        ny = y + objects[i, _VY]
        if ny < 0:
            objects[i, _VY] = 1
            ny = y + 1
        b = _brick_at(bricks, i, x, ny)
        px = objects[i, _PX]
        if b >= 0:
            _break(i, b, bricks, objects, img, pixels)
            reward += 1.0
            objects[i, _VY] = -objects[i, _VY]
            ny = y
        elif ny == PADDLE_Y and objects[i, _VY] > 0 and px <= x < px + PADDLE_W:
            objects[i, _VY] = -1
            objects[i, _VX] = -1 if x < px + PADDLE_W // 2 else 1
            ny = y
        y = ny
        objects[i, _BX] = x
        objects[i, _BY] = y
        if y >= HEIGHT - 1:  # missed: lose a life and serve again
            objects[i, _LIVES] -= 1
            _serve(i, objects, rng)
        terminal = objects[i, _LIVES] <= 0 or objects[i, _LEFT] <= 0
        rewards[i] = reward
        ret[i] += reward
        length[i] += 1
        truncated = (not terminal) and length[i] >= max_steps
        terminals[i] = terminal
        truncations[i] = truncated
        if pixels:
            px = objects[i, _PX]
            img[i, 0, PADDLE_Y, px : px + PADDLE_W] = PADDLE_PIXEL
            img[i, 0, objects[i, _BY], objects[i, _BX]] = BALL_PIXEL
        else:
            _vector(i, objects, bricks, vec, lives)
        if terminal or truncated:
            stats[i, 3] += BRICK_ROWS * BRICK_COLS - objects[i, _LEFT]
            end_episode(io, i, i, i + 1)
            _new_episode(i, objects, bricks, rng, lives)
            if pixels:
                _paint(i, objects, bricks, img)
            else:
                _vector(i, objects, bricks, vec, lives)
    return invalid


def frame(objects: np.ndarray, bricks: np.ndarray) -> np.ndarray:
    """The ``[42, 32]`` uint8 frame of one copy's ``objects`` and ``bricks`` state (numpy).

    Example:
        >>> env = Breakout(seed=0)
        >>> _ = env.reset()
        >>> int((frame(env.state["objects"][0], env.state["bricks"][0]) == 128).sum())
        256
    """
    img = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for b in np.flatnonzero(bricks):
        y0 = BRICK_TOP + (b // BRICK_COLS) * BRICK_H
        x0 = (b % BRICK_COLS) * BRICK_W
        img[y0 : y0 + BRICK_H, x0 : x0 + BRICK_W] = BRICK_PIXEL
    px = int(objects[_PX])
    img[PADDLE_Y, px : px + PADDLE_W] = PADDLE_PIXEL
    img[int(objects[_BY]), int(objects[_BX])] = BALL_PIXEL
    return img


class Breakout(NativeEnv):
    """``breakout-v1``: compact Breakout with vector or pixel observations (Discrete(3)).

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        obs_mode: ``"vector"`` (float32 ``[38]``) or ``"pixels"`` (uint8 ``[1, 42, 32]``).
        lives: Balls per episode.
        max_steps: Truncation step count.
    """

    check_actions = False  # checks its own actions (live rows only, its own messages)

    score_keys = ("bricks",)
    solve_threshold = 24.0  # mean bricks broken per episode (of 32)

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        obs_mode: str = "vector",
        lives: int = 3,
        max_steps: int = 3000,
    ) -> None:
        if obs_mode not in ("vector", "pixels"):
            raise APIUsageError(f"obs_mode must be 'vector' or 'pixels', got {obs_mode!r}")
        if int(lives) < 1 or int(max_steps) < 1:
            raise APIUsageError(f"lives and max_steps must be >= 1, got {lives}, {max_steps}")
        self.obs_mode = obs_mode
        self.pixels = obs_mode == "pixels"
        self.lives = int(lives)
        self.max_steps = int(max_steps)
        if self.pixels:
            observation_space = spaces.Box(0, 255, (1, HEIGHT, WIDTH), dtype=np.uint8)
        else:
            observation_space = spaces.Box(-1.0, 1.0, (VECTOR_SIZE,), dtype=np.float32)
        self._no_vector = np.zeros((0, VECTOR_SIZE), dtype=np.float32)
        self._no_pixels = np.zeros((0, 1, HEIGHT, WIDTH), dtype=np.uint8)
        super().__init__(
            num_envs,
            observation_space,
            spaces.Discrete(3),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``objects`` int64 ``[E, 7]`` (paddle x, ball x, ball y, vx, vy, lives, bricks left)
        and ``bricks`` uint8 ``[E, 32]`` (1 = standing, row-major)."""
        return {
            "objects": np.zeros((num_envs, 7), dtype=np.int64),
            "bricks": np.zeros((num_envs, BRICK_ROWS * BRICK_COLS), dtype=np.uint8),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Start a fresh game in copies ``[lo, hi)``."""
        s = self.state
        vec, img = self._views(self.observations)
        _reset(lo, hi, self.io, s["objects"], s["bricks"], vec, img, self.pixels, self.lives)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        s = self.state
        vec, img = self._views(self.observations)
        invalid = _step(
            lo, hi, self.io, s["objects"], s["bricks"], vec, img, self.pixels, self.lives,
            self.max_steps,
        )  # fmt: skip
        if invalid:
            raise APIUsageError(f"breakout actions must be 0, 1 or 2; got {invalid} others")

    def _views(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vector, pixels)`` arguments for the kernels: the buffer and an empty stand-in."""
        if self.pixels:
            return self._no_vector, array
        return array, self._no_pixels

    def render(self, row: int = 0) -> np.ndarray:
        """Row ``row``'s screen, 8x upscaled to RGB ``[336, 256, 3]``."""
        img = frame(self.state["objects"][row], self.state["bricks"][row])
        palette = np.zeros((256, 3), dtype=np.uint8)
        palette[BRICK_PIXEL] = (200, 72, 72)
        palette[PADDLE_PIXEL] = (200, 200, 200)
        palette[BALL_PIXEL] = (255, 255, 255)
        return draw.grid(img, palette, cell_size=8)
