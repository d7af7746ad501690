"""Cartpole swing-up: dm_control's ``cartpole/swingup`` task, rebuilt as a numba kernel.

The model is dm_control's cart-pole (MuJoCo ``cartpole.xml``): a 1 kg cart on a rail and a
0.1 kg, 1 m capsule pole (centre of mass 0.5 m from the hinge, inertia 0.00942 kg m² about it)
under gravity 9.81, a motor of gear 10 on the cart (action in ``[-1, 1]``), joint damping
``5e-4`` (cart) and ``2e-6`` (hinge), integrated with RK4 at ``dt = 0.01``. The rail ends at
``|x| = 1.8`` are MuJoCo-style soft limits (time constant 0.08, damping ratio 1, impedance 0.95),
approximated in closed form. The state is float64 ``(x, theta, x_dot, theta_dot)`` with
``theta = 0`` upright; resets put the pole down (``theta = pi``) with 0.01-scale Gaussian noise
on every coordinate. The observation is dm_control's ``(x, cos theta, sin theta, x_dot,
theta_dot)`` (float32).

The reward is dm_control's smooth swing-up reward, in ``[0, 1]`` per step:
``(1 + cos theta) / 2 * (4 + (1 - u²)) / 5 * (1 + tol(theta_dot, 5)) / 2 * (1 + tol(x, 2)) / 2``
where ``tol(v, m) = 0.1 ** ((v / m)²)`` is dm_control's Gaussian tolerance. Episodes never
terminate and are truncated after 1000 steps (10 s), so returns lie in ``[0, 1000]``.

Example:
    >>> env = CartPoleSwingup(num_envs=2, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.single_action_space
    ((2, 5), Box(-1.0, 1.0, (1,), float32))
    >>> _, rewards, *_ = env.step(np.zeros((2, 1), dtype=np.float32))
    >>> bool(((rewards >= 0) & (rewards < 0.1)).all())  # the pole hangs down
    True
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

__all__ = ["CartPoleSwingup"]

GRAVITY = 9.81
CART_MASS = 1.0
POLE_MASS = 0.1
POLE_COM = 0.5  # hinge to the pole's centre of mass
POLE_INERTIA = 0.009424592767295598  # about the centre of mass (MuJoCo's capsule inertia)
GEAR = 10.0
CART_DAMPING = 5e-4
POLE_DAMPING = 2e-6
DT = 0.01
RAIL = 1.8
# MuJoCo soft limit: solref (0.08, 1), impedance taken at its 0.95 plateau.
_IMPEDANCE = 0.95
_LIMIT_B = 2.0 / (_IMPEDANCE * 0.08)
_LIMIT_K = 1.0 / (_IMPEDANCE * _IMPEDANCE * 0.08 * 0.08)
MAX_EPISODE_STEPS = 1000
_LN_TENTH = math.log(0.1)


@njit(cache=True, nogil=True, inline="always")
def _gauss(rng: np.ndarray, i: int) -> float:  # pragma: no cover - numba
    """A standard normal from copy ``i``'s generator (Box-Muller)."""
    u1 = rng_uniform(rng, i, 0.0, 1.0)
    u2 = rng_uniform(rng, i, 0.0, 1.0)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, nogil=True, inline="always")
def _observe(obs: np.ndarray, state: np.ndarray, i: int) -> None:  # pragma: no cover - numba
    sin, cos = sincos(state[i, 1])
    obs[i, 0] = state[i, 0]
    obs[i, 1] = cos
    obs[i, 2] = sin
    obs[i, 3] = state[i, 2]
    obs[i, 4] = state[i, 3]


@njit(cache=True, nogil=True, inline="always")
def _reset_one(i: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover - numba
    rng = io[RNG]
    state[i, 0] = 0.01 * _gauss(rng, i)
    state[i, 1] = math.pi + 0.01 * _gauss(rng, i)
    state[i, 2] = 0.01 * _gauss(rng, i)
    state[i, 3] = 0.01 * _gauss(rng, i)
    _observe(io[OBSERVATIONS], state, i)


@njit(cache=True, nogil=True)
def _reset(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    for i in range(lo, hi):
        _reset_one(i, io, state)


@njit(cache=True, nogil=True, inline="always")
def _accel(
    x: float, theta: float, x_dot: float, theta_dot: float, force: float
) -> tuple[float, float]:  # pragma: no cover - numba
    """Accelerations ``(x_ddot, theta_ddot)`` of the cart-pole (Lagrangian, soft rail limits)."""
    sin, cos = sincos(theta)
    ml = POLE_MASS * POLE_COM
    m00 = CART_MASS + POLE_MASS
    m01 = ml * cos
    m11 = POLE_INERTIA + POLE_MASS * POLE_COM * POLE_COM
    f0 = force - CART_DAMPING * x_dot + ml * sin * theta_dot * theta_dot
    f1 = GRAVITY * ml * sin - POLE_DAMPING * theta_dot
    det = m00 * m11 - m01 * m01
    inv00 = m11 / det
    inv01 = -m01 / det
    xdd = inv00 * f0 + inv01 * f1
    tdd = inv01 * f0 + (m00 / det) * f1
    if x > RAIL or x < -RAIL:
        # distance to the limit (negative inside the wall) along the constraint normal
        sign = -1.0 if x > RAIL else 1.0
        dist = sign * x + RAIL
        vel = sign * x_dot
        acc = sign * xdd
        aref = -_LIMIT_B * vel - _LIMIT_K * dist
        if aref > acc:  # the wall only pushes
            target = (1.0 - _IMPEDANCE) * acc + _IMPEDANCE * aref
            impulse = sign * (target - acc) / inv00
            xdd = xdd + inv00 * impulse
            tdd = tdd + inv01 * impulse
    return xdd, tdd


@njit(cache=True, nogil=True, inline="always")
def _advance(state: np.ndarray, i: int, force: float) -> None:  # pragma: no cover - numba
    """One RK4 step of ``DT`` for row ``i``."""
    x, th, xd, td = state[i, 0], state[i, 1], state[i, 2], state[i, 3]
    a1, b1 = _accel(x, th, xd, td, force)
    h = 0.5 * DT
    a2, b2 = _accel(x + h * xd, th + h * td, xd + h * a1, td + h * b1, force)
    xd2, td2 = xd + h * a1, td + h * b1
    a3, b3 = _accel(x + h * xd2, th + h * td2, xd + h * a2, td + h * b2, force)
    xd3, td3 = xd + h * a2, td + h * b2
    a4, b4 = _accel(x + DT * xd3, th + DT * td3, xd + DT * a3, td + DT * b3, force)
    xd4, td4 = xd + DT * a3, td + DT * b3
    s = DT / 6.0
    state[i, 0] = x + s * (xd + 2.0 * xd2 + 2.0 * xd3 + xd4)
    state[i, 1] = th + s * (td + 2.0 * td2 + 2.0 * td3 + td4)
    state[i, 2] = xd + s * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
    state[i, 3] = td + s * (b1 + 2.0 * b2 + 2.0 * b3 + b4)


@njit(cache=True, nogil=True, inline="always")
def swingup_reward(x: float, cos: float, theta_dot: float, u: float) -> float:  # pragma: no cover
    """dm_control's smooth cartpole reward for cart ``x``, pole ``cos``, ``theta_dot``, action."""
    upright = (cos + 1.0) / 2.0
    centered = (1.0 + math.exp(_LN_TENTH * (x / 2.0) ** 2)) / 2.0
    small_control = (4.0 + max(1.0 - u * u, 0.0)) / 5.0
    small_velocity = (1.0 + math.exp(_LN_TENTH * (theta_dot / 5.0) ** 2)) / 2.0
    return upright * small_control * small_velocity * centered


@njit(cache=True, nogil=True)
def _step(lo: int, hi: int, io: KernelIO, state: np.ndarray) -> None:  # pragma: no cover
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations = io[TERMINALS], io[TRUNCATIONS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    any_done = False
    for i in range(lo, hi):
        u = min(max(np.float64(actions[i, 0]), -1.0), 1.0)
        _advance(state, i, GEAR * u)
        _observe(obs, state, i)
        reward = swingup_reward(state[i, 0], np.float64(obs[i, 1]), state[i, 3], u)
        rewards[i] = reward
        ret[i] += reward
        length[i] += 1
        terminals[i] = False
        truncated = length[i] >= MAX_EPISODE_STEPS
        truncations[i] = truncated
        any_done |= truncated
    if any_done:
        for i in range(lo, hi):
            if truncations[i]:
                end_episode(io, i, i, i + 1)
                _reset_one(i, io, state)


_OBS_HIGH = np.array([np.inf, 1.0, 1.0, np.inf, np.inf], dtype=np.float32)


class CartPoleSwingup(NativeEnv):
    """``cartpole-swingup-v1``: dm_control's cartpole swing-up for ``num_envs`` copies.

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
    """

    max_episode_steps = MAX_EPISODE_STEPS

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
            spaces.Box(-1.0, 1.0, (1,), dtype=np.float32),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )
        self._physics = self.state["physics"]  # never reallocated (set_state copies in place)

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``physics``: float64 ``[num_envs, 4]`` = ``(x, theta, x_dot, theta_dot)``."""
        return {"physics": np.zeros((num_envs, 4), dtype=np.float64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh states for copies ``[lo, hi)``."""
        _reset(lo, hi, self.io, self._physics)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        _step(lo, hi, self.io, self._physics)

    def render(self, row: int = 0) -> np.ndarray:
        """A 400x600 RGB image of row ``row`` (rail, cart and pole)."""
        x, theta = (float(v) for v in self.state["physics"][row, :2])
        width, height = 600, 400
        img = draw.canvas(height, width, (255, 255, 255))
        scale = width / (2 * RAIL + 0.8)
        rail_y = height // 2
        draw.fill_rect(img, 0, rail_y, width, rail_y + 2, (0, 0, 0))
        cart_x = x * scale + width / 2.0
        draw.fill_rect(
            img, int(cart_x - 30), rail_y - 15, int(cart_x + 30), rail_y + 15, (40, 40, 40)
        )
        tip_x = cart_x + scale * math.sin(theta)
        tip_y = rail_y - scale * math.cos(theta)
        draw.draw_line(img, cart_x, rail_y, tip_x, tip_y, 6, (202, 152, 101))
        draw.fill_circle(img, cart_x, rail_y, 4, (129, 132, 203))
        return img
