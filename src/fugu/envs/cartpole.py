"""CartPole: Gymnasium's CartPole-v1 dynamics, exactly, for N copies in one numba kernel.

The state is float64 ``(x, x_dot, theta, theta_dot)`` integrated with explicit Euler
(``tau = 0.02``); an episode terminates when ``|x| > 2.4`` or ``|theta| > 12 degrees`` and is
truncated after 500 steps. The reward is 1 on every step, the terminating one included.
Resets draw every state variable uniformly from ``[-0.05, 0.05)``. Solved at a mean return of
475. ``cartpole-continuous-v1`` takes a Box action in ``[-1, 1]`` that scales the force.

This module is the reference example of a native env (see :mod:`fugu.envs.native`).

Example:
    >>> env = CartPole(num_envs=2, seed=1)
    >>> obs, _ = env.reset()
    >>> obs.dtype, obs.shape
    (dtype('float32'), (2, 4))
    >>> _, rewards, terminals, truncations, _ = env.step(np.zeros(2, dtype=np.int32))
    >>> rewards.tolist(), terminals.tolist()
    ([1.0, 1.0], [False, False])
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers
from fugu.envs import render as draw
from fugu.envs.libm import sincos
from fugu.envs.native import (
    ACTIONS,
    EPISODE_LENGTH,
    EPISODE_RETURN,
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

__all__ = ["CartPole", "CartPoleContinuous"]

GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
MAX_EPISODE_STEPS = 500


@njit(cache=True, nogil=True, inline="always")
def _reset_one(i: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover - numba
    obs = io[OBSERVATIONS]
    for k in range(4):
        state[i, k] = rng_uniform(io[RNG], i, -0.05, 0.05)
        obs[i, k] = state[i, k]


@njit(cache=True, nogil=True)
def _reset(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    for i in range(lo, hi):
        _reset_one(i, io, state)


@njit(cache=True, nogil=True)
def _advance(state: np.ndarray, obs: np.ndarray, i: int, force: float) -> bool:  # pragma: no cover
    """Gymnasium's CartPole-v1 step for row ``i``, operation for operation (float64)."""
    x = state[i, 0]
    x_dot = state[i, 1]
    theta = state[i, 2]
    theta_dot = state[i, 3]
    sintheta, costheta = sincos(theta)  # bit-identical to np.sin, np.cos; twice as fast
    temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS)
    )
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    x = x + TAU * x_dot
    x_dot = x_dot + TAU * xacc
    theta = theta + TAU * theta_dot
    theta_dot = theta_dot + TAU * thetaacc
    state[i, 0] = x
    state[i, 1] = x_dot
    state[i, 2] = theta
    state[i, 3] = theta_dot
    obs[i, 0] = x
    obs[i, 1] = x_dot
    obs[i, 2] = theta
    obs[i, 3] = theta_dot
    # branch-free (| not `or`): the same flags as Gymnasium's short-circuit test
    return (
        (x < -X_THRESHOLD)
        | (x > X_THRESHOLD)
        | (theta < -THETA_THRESHOLD)
        | (theta > THETA_THRESHOLD)
    )


@njit(cache=True, nogil=True)
def _account(
    i: int,
    terminal: bool,
    rewards: np.ndarray,
    terminals: np.ndarray,
    truncations: np.ndarray,
    ret: np.ndarray,
    length: np.ndarray,
) -> bool:  # pragma: no cover - numba
    """Reward 1, count the step, set the flags; return whether the episode ended."""
    rewards[i] = 1.0
    ret[i] += 1.0
    length[i] += 1
    truncated = length[i] >= MAX_EPISODE_STEPS
    terminals[i] = terminal
    truncations[i] = truncated
    return terminal | truncated


@njit(cache=True, nogil=True)
def _autoreset(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    """Second pass over the rows: save final observations and reset the rows that ended."""
    terminals = io[TERMINALS]
    truncations = io[TRUNCATIONS]
    for i in range(lo, hi):
        if terminals[i] or truncations[i]:
            end_episode(io, i, i, i + 1)
            _reset_one(i, io, state)


@njit(cache=True, nogil=True)
def _step(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    # Physics in one tight loop, episode ends in a second pass (faster than branching inline).
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations = io[TERMINALS], io[TRUNCATIONS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    any_done = False
    for i in range(lo, hi):
        force = FORCE_MAG if actions[i] == 1 else -FORCE_MAG
        terminal = _advance(state, obs, i, force)
        any_done |= _account(i, terminal, rewards, terminals, truncations, ret, length)
    if any_done:
        _autoreset(lo, hi, io, state)


@njit(cache=True, nogil=True)
def _step_continuous(
    lo: int, hi: int, io: KernelIO, state: np.ndarray
) -> None:  # pragma: no cover - numba
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations = io[TERMINALS], io[TRUNCATIONS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    any_done = False
    for i in range(lo, hi):
        a = min(max(np.float64(actions[i, 0]), -1.0), 1.0)
        terminal = _advance(state, obs, i, FORCE_MAG * a)
        any_done |= _account(i, terminal, rewards, terminals, truncations, ret, length)
    if any_done:
        _autoreset(lo, hi, io, state)


_OBS_HIGH = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)


class CartPole(NativeEnv):
    """``cartpole-v1``: Gymnasium's CartPole-v1 for ``num_envs`` copies (Discrete(2) actions).

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
    """

    solve_threshold = 475.0
    _kernel = staticmethod(_step)

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(
            num_envs,
            spaces.Box(-_OBS_HIGH, _OBS_HIGH, dtype=np.float32),
            self._action_space(),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )
        self._physics = self.state["physics"]  # never reallocated (set_state copies in place)

    def _action_space(self) -> spaces.Space:
        return spaces.Discrete(2)

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``physics``: float64 ``[num_envs, 4]`` = ``(x, x_dot, theta, theta_dot)``."""
        return {"physics": np.zeros((num_envs, 4), dtype=np.float64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh states for copies ``[lo, hi)``."""
        _reset(lo, hi, self.io, self._physics)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        self._kernel(lo, hi, self.io, self._physics)

    def render(self, row: int = 0) -> np.ndarray:
        """A 400x600 RGB image of row ``row`` (cart, pole and track)."""
        x, _, theta, _ = self.state["physics"][row]
        return draw_cartpole(float(x), float(theta))


class CartPoleContinuous(CartPole):
    """``cartpole-continuous-v1``: CartPole with a Box action in ``[-1, 1]`` scaling the force.

    The applied force is ``10 * clip(action, -1, 1)``; everything else is ``cartpole-v1``.
    """

    _kernel = staticmethod(_step_continuous)

    def _action_space(self) -> spaces.Space:
        return spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)


def draw_cartpole(x: float, theta: float, width: int = 600, height: int = 400) -> np.ndarray:
    """Draw a cart at ``x`` with its pole at angle ``theta`` (Gymnasium's layout)."""
    img = draw.canvas(height, width, (255, 255, 255))
    scale = width / (X_THRESHOLD * 2)
    track_y = int(height * 0.75)
    draw.fill_rect(img, 0, track_y, width, track_y + 1, (0, 0, 0))
    cart_x = x * scale + width / 2.0
    draw.fill_rect(
        img, int(cart_x - 25), track_y - 30, int(cart_x + 25), track_y, (40, 40, 40)
    )  # fmt: skip
    pole_len = scale * (2 * LENGTH)
    tip_x = cart_x + pole_len * math.sin(theta)
    tip_y = (track_y - 20) - pole_len * math.cos(theta)
    draw.draw_line(img, cart_x, track_y - 20, tip_x, tip_y, 5, (202, 152, 101))
    draw.fill_circle(img, cart_x, track_y - 20, 4, (129, 132, 203))
    return img
