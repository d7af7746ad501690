"""Pendulum: Gymnasium's Pendulum-v1 dynamics, exactly, for N copies in one numba kernel.

The state is float64 ``(theta, theta_dot)``; the observation ``(cos theta, sin theta,
theta_dot)`` (float32). The torque action is clipped to ``[-2, 2]``; the reward is
``-(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)`` computed before the update; the
angular velocity is clipped to ``[-8, 8]``. There is no termination; episodes are truncated
after 200 steps. Resets draw ``theta ~ U[-pi, pi)`` and ``theta_dot ~ U[-1, 1)``. Gymnasium
gives no solve threshold; a return above -200 is a good policy.

Example:
    >>> env = Pendulum(num_envs=3, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.actions.shape, env.actions.dtype
    ((3, 3), (3, 1), dtype('float32'))
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

__all__ = ["Pendulum"]

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
G = 10.0
M = 1.0
L = 1.0
MAX_EPISODE_STEPS = 200
# Gymnasium computes ``3.0 / (m * l**2) * u`` and ``0.001 * (u**2)`` in float32 (u is float32
# and NumPy 2 keeps Python floats weak), so the kernel does too.
_TORQUE_COEF = np.float32(3.0 / (M * L**2))
_COST_U = np.float32(0.001)
_GRAVITY_COEF = 3 * G / (2 * L)


@njit(cache=True, nogil=True, inline="always")
def _reset_one(i: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover - numba
    obs = io[OBSERVATIONS]
    state[i, 0] = rng_uniform(io[RNG], i, -np.pi, np.pi)
    state[i, 1] = rng_uniform(io[RNG], i, -1.0, 1.0)
    sin, cos = sincos(state[i, 0])
    obs[i, 0] = cos
    obs[i, 1] = sin
    obs[i, 2] = state[i, 1]


@njit(cache=True, nogil=True)
def _reset(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    for i in range(lo, hi):
        _reset_one(i, io, state)


@njit(cache=True, nogil=True)
def _step(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations = io[TERMINALS], io[TRUNCATIONS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    for i in range(lo, hi):
        th = state[i, 0]
        thdot = state[i, 1]
        u = min(max(actions[i, 0], np.float32(-MAX_TORQUE)), np.float32(MAX_TORQUE))
        normalized = ((th + np.pi) % (2 * np.pi)) - np.pi
        costs = normalized * normalized + 0.1 * (thdot * thdot) + np.float64(_COST_U * (u * u))
        newthdot = thdot + (_GRAVITY_COEF * np.sin(th) + np.float64(_TORQUE_COEF * u)) * DT
        newthdot = min(max(newthdot, -MAX_SPEED), MAX_SPEED)
        newth = th + newthdot * DT
        state[i, 0] = newth
        state[i, 1] = newthdot
        sin, cos = sincos(newth)
        obs[i, 0] = cos
        obs[i, 1] = sin
        obs[i, 2] = newthdot
        reward = -costs
        rewards[i] = reward
        ret[i] += reward
        length[i] += 1
        truncated = length[i] >= MAX_EPISODE_STEPS
        terminals[i] = False
        truncations[i] = truncated
        if truncated:
            end_episode(io, i, i, i + 1)
            _reset_one(i, io, state)


_OBS_HIGH = np.array([1.0, 1.0, MAX_SPEED], dtype=np.float32)


class Pendulum(NativeEnv):
    """``pendulum-v1``: Gymnasium's Pendulum-v1 for ``num_envs`` copies (Box(-2, 2, (1,))).

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
    """

    solve_threshold = -200.0

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
            spaces.Box(-MAX_TORQUE, MAX_TORQUE, (1,), dtype=np.float32),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )
        self._physics = self.state["physics"]  # never reallocated (set_state copies in place)

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``physics``: float64 ``[num_envs, 2]`` = ``(theta, theta_dot)``."""
        return {"physics": np.zeros((num_envs, 2), dtype=np.float64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh states for copies ``[lo, hi)``."""
        _reset(lo, hi, self.io, self._physics)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        _step(lo, hi, self.io, self._physics)

    def render(self, row: int = 0) -> np.ndarray:
        """A 500x500 RGB image of row ``row`` (the rod pointing at angle theta from up)."""
        theta = float(self.state["physics"][row, 0])
        size = 500
        img = draw.canvas(size, size, (255, 255, 255))
        c = size / 2
        tip_x = c + 0.4 * size * math.sin(theta)
        tip_y = c - 0.4 * size * math.cos(theta)
        draw.draw_line(img, c, c, tip_x, tip_y, 20, (204, 77, 77))
        draw.fill_circle(img, c, c, 6, (0, 0, 0))
        return img
