"""Simple Spread (MPE): ``N`` agents cover ``N`` landmarks without bumping into each other.

A numba port of mpe2's ``simple_spread_v3`` (discrete actions, ``N=3``, ``local_ratio=0.5``,
``max_cycles=25`` by default) with the same dynamics, rewards and observation layout, checked
against mpe2 step by step in ``tests/envs/test_simple_spread.py``. Every copy holds ``N`` agents
(one row each, agent-major: row ``copy * N + k`` is agent ``k``) and ``N`` landmarks in the
plane.

* **Reset.** Agent positions, then landmark positions, are drawn uniformly from
  ``[-1, 1]^2``; velocities start at zero.
* **Actions.** ``Discrete(5)``: no-op, left, right, down, up; a move applies a force of 5
  along its axis.
* **Physics** (``dt = 0.1``, damping 0.25, unit mass, agent radius 0.15). Every pair of agents
  pushes apart with the soft contact force ``100 * softplus(-(d - 0.3) / 1e-3) * 1e-3`` along
  the line between them (landmarks do not collide). Positions move by the old velocity, then
  the velocity is damped and the force added: ``p += v dt; v = 0.75 v + f dt``.
* **Reward** of agent ``k``: ``(1 - local_ratio) * G + local_ratio * L_k`` where the shared
  ``G = -sum over landmarks of the distance to the nearest agent`` and ``L_k = -1`` per other
  agent closer than 0.3 (a collision).
* **Observation** (float32, ``4 + 2N + 4(N - 1)``; 18 for ``N=3``): own velocity, own
  position, each landmark's position relative to the agent, each other agent's relative
  position, then ``2 (N - 1)`` zeros (the silent agents' communication channels, kept so rows
  match mpe2's).
* **Episodes** are truncated after ``max_cycles`` steps (never terminated).

``episode_return`` in the infos is the mean per-agent return; multiply by ``N`` for the
"N-scaled" figures of JaxMARL (a random policy scores about -81 there for ``N=3``).

Example:
    >>> env = SimpleSpread(num_envs=2, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.agents_per_env, env.single_action_space
    ((6, 18), 3, Discrete(5))
    >>> _, rewards, _, truncations, _ = env.step(np.zeros(6, dtype=np.int32))
    >>> rewards.shape, bool((rewards < 0).all()), bool(truncations.any())
    ((6,), True, False)
"""

from __future__ import annotations

import math

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
    OBSERVATIONS,
    REWARDS,
    RNG,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
    rng_uniform,
)

__all__ = ["SimpleSpread", "observation_size"]

DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 100.0
CONTACT_MARGIN = 1e-3
AGENT_SIZE = 0.15
SENSITIVITY = 5.0


def observation_size(num_agents: int) -> int:
    """Length of one row: ``4 + 2N + 4(N - 1)`` (18 for three agents)."""
    return 4 + 2 * num_agents + 4 * (num_agents - 1)


@njit(cache=True, nogil=True, inline="always")
def _softplus(x: float) -> float:  # pragma: no cover - numba
    # numpy's logaddexp(0, x), branch for branch
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True, nogil=True)
def _observe(
    e: int, pos: np.ndarray, vel: np.ndarray, marks: np.ndarray, obs: np.ndarray
) -> None:  # pragma: no cover - numba
    n = pos.shape[1]
    for a in range(n):
        row = e * n + a
        px = pos[e, a, 0]
        py = pos[e, a, 1]
        obs[row, 0] = vel[e, a, 0]
        obs[row, 1] = vel[e, a, 1]
        obs[row, 2] = px
        obs[row, 3] = py
        k = 4
        for m in range(n):
            obs[row, k] = marks[e, m, 0] - px
            obs[row, k + 1] = marks[e, m, 1] - py
            k += 2
        for o in range(n):
            if o != a:
                obs[row, k] = pos[e, o, 0] - px
                obs[row, k + 1] = pos[e, o, 1] - py
                k += 2


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, pos: np.ndarray, vel: np.ndarray, marks: np.ndarray
) -> None:  # pragma: no cover - numba
    obs, rng = io[OBSERVATIONS], io[RNG]
    n = pos.shape[1]
    for e in range(lo, hi):
        for a in range(n):
            pos[e, a, 0] = rng_uniform(rng, e, -1.0, 1.0)
            pos[e, a, 1] = rng_uniform(rng, e, -1.0, 1.0)
            vel[e, a, 0] = 0.0
            vel[e, a, 1] = 0.0
        for m in range(n):
            marks[e, m, 0] = rng_uniform(rng, e, -1.0, 1.0)
            marks[e, m, 1] = rng_uniform(rng, e, -1.0, 1.0)
        for a in range(n):
            for k in range(obs.shape[1] - 2 * (n - 1), obs.shape[1]):
                obs[e * n + a, k] = 0.0
        _observe(e, pos, vel, marks, obs)


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, pos: np.ndarray, vel: np.ndarray, marks: np.ndarray,
    force: np.ndarray, local_ratio: float, max_cycles: int,
) -> None:  # pragma: no cover - numba  # fmt: skip
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    truncations = io[TRUNCATIONS]
    ret, length = io[EPISODE_RETURN], io[EPISODE_LENGTH]
    n = pos.shape[1]
    dist_min = 2.0 * AGENT_SIZE
    for e in range(lo, hi):
        for a in range(n):
            act = actions[e * n + a]
            fx = 0.0
            fy = 0.0
            if act == 1:
                fx = -1.0
            elif act == 2:
                fx = 1.0
            elif act == 3:
                fy = -1.0
            elif act == 4:
                fy = 1.0
            force[e, a, 0] = fx * SENSITIVITY
            force[e, a, 1] = fy * SENSITIVITY
        for a in range(n):
            for b in range(a + 1, n):
                dx = pos[e, a, 0] - pos[e, b, 0]
                dy = pos[e, a, 1] - pos[e, b, 1]
                dist = math.sqrt(dx * dx + dy * dy)
                penetration = _softplus(-(dist - dist_min) / CONTACT_MARGIN) * CONTACT_MARGIN
                gx = CONTACT_FORCE * dx / dist * penetration
                gy = CONTACT_FORCE * dy / dist * penetration
                force[e, a, 0] = gx + force[e, a, 0]
                force[e, a, 1] = gy + force[e, a, 1]
                force[e, b, 0] = -gx + force[e, b, 0]
                force[e, b, 1] = -gy + force[e, b, 1]
        for a in range(n):
            for k in range(2):
                pos[e, a, k] += vel[e, a, k] * DT
                vel[e, a, k] = vel[e, a, k] * (1.0 - DAMPING)
                vel[e, a, k] += force[e, a, k] / 1.0 * DT
        shared = 0.0
        for m in range(n):
            nearest = np.inf
            for a in range(n):
                dx = pos[e, a, 0] - marks[e, m, 0]
                dy = pos[e, a, 1] - marks[e, m, 1]
                nearest = min(nearest, math.sqrt(dx * dx + dy * dy))
            shared -= nearest
        for a in range(n):
            local = 0.0
            for b in range(n):
                if b != a:
                    dx = pos[e, b, 0] - pos[e, a, 0]
                    dy = pos[e, b, 1] - pos[e, a, 1]
                    if math.sqrt(dx * dx + dy * dy) < dist_min:
                        local -= 1.0
            row = e * n + a
            reward = shared * (1.0 - local_ratio) + local * local_ratio
            rewards[row] = reward
            ret[row] += reward
            length[row] += 1
        _observe(e, pos, vel, marks, obs)
        truncated = length[e * n] >= max_cycles
        for a in range(n):
            truncations[e * n + a] = truncated
        if truncated:
            end_episode(io, e, e * n, e * n + n)
            _reset(e, e + 1, io, pos, vel, marks)


class SimpleSpread(NativeEnv):
    """``simple-spread-v1``: cooperative landmark covering, mpe2's ``simple_spread_v3`` in numba.

    Args:
        num_envs: Number of copies (``num_envs * num_agents`` rows).
        threads: Threads stepping disjoint ranges of copies.
        seed: Seed of the first reset (copy ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        num_agents: Agents (and landmarks) per copy, ``N``.
        local_ratio: Weight of the agent's own collision penalty against the shared reward.
        max_cycles: Steps per episode (then truncated).
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        num_agents: int = 3,
        local_ratio: float = 0.5,
        max_cycles: int = 25,
    ) -> None:
        if int(num_agents) < 2:
            raise APIUsageError(f"simple-spread needs num_agents >= 2, got {num_agents}")
        if not 0.0 <= local_ratio <= 1.0:
            raise APIUsageError(f"local_ratio must be in [0, 1], got {local_ratio}")
        if int(max_cycles) < 1:
            raise APIUsageError(f"max_cycles must be >= 1, got {max_cycles}")
        self.n = int(num_agents)
        self.local_ratio = float(local_ratio)
        self.max_cycles = int(max_cycles)
        size = observation_size(self.n)
        super().__init__(
            num_envs,
            spaces.Box(-np.inf, np.inf, (size,), dtype=np.float32),
            spaces.Discrete(5),
            agents_per_env=self.n,
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``position``/``velocity``/``landmarks`` ``[num_envs, N, 2]`` float64 and the
        ``force`` scratch array of the step kernel."""
        shape = (num_envs, self.n, 2)
        return {
            "position": np.zeros(shape),
            "velocity": np.zeros(shape),
            "landmarks": np.zeros(shape),
            "force": np.zeros(shape),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw new agent and landmark positions for copies ``[lo, hi)``."""
        s = self.state
        _reset(lo, hi, self.io, s["position"], s["velocity"], s["landmarks"])

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        s = self.state
        _step(
            lo, hi, self.io, s["position"], s["velocity"], s["landmarks"], s["force"],
            self.local_ratio, self.max_cycles,
        )  # fmt: skip

    def observe(self) -> None:
        """Rewrite every observation row from the state (after editing ``self.state``)."""
        s = self.state
        obs = self.io[OBSERVATIONS]
        for e in range(self.num_copies):
            _observe(e, s["position"], s["velocity"], s["landmarks"], obs)

    def render(self, row: int = 0) -> np.ndarray:
        """A 128x128 image of the copy holding ``row``: landmarks (grey), agents (blue)."""
        size = 128
        e = row // self.n

        def px(v: float) -> float:
            return (float(np.clip(v, -2.0, 2.0)) + 2.0) * 0.25 * (size - 1)

        img = draw.canvas(size, size, (245, 245, 245))
        for x, y in self.state["landmarks"][e]:
            draw.fill_circle(img, px(x), px(y), 2, (90, 90, 90))
        for x, y in self.state["position"][e]:
            draw.fill_circle(img, px(x), px(y), AGENT_SIZE * 0.25 * (size - 1), (80, 80, 215))
        return img
