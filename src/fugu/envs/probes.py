"""Probe envs: tiny native envs that each test one piece of a learning algorithm.

When a trainer fails on a real env, these tell you which piece is broken. Each has a known
optimal return (per agent, per episode):

=========================  ====================================================  =========
id                         what it tests                                         optimal
=========================  ====================================================  =========
``probe-constant-v1``      value learning: one step, reward +1, V = 1            1
``probe-observation-v1``   policy learning: obs ±1, reward +1 if the action      1
                           matches (1 for +1, 0 for -1), -1 otherwise
``probe-delayed-v1``       discounting: two steps, reward +1 only at the         1
                           second; V(first) = gamma, V(second) = 1
``probe-memory-v1``        memory: a ±1 cue at step 0, then ``delay`` blank      1
                           steps; the last action must recall the cue (+1/-1);
                           a memoryless policy gets 0 on average
``probe-multiagent-v1``    multi-agent rows: ``agents`` agents per copy, agent   1
                           ``k`` sees one-hot(k) and earns +1 for action
                           ``k % 2``, -1 otherwise
``probe-continuous-v1``    continuous actions: obs = target ~ U[-1, 1), reward   1
                           ``1 - (clip(a, -1, 1) - target)^2``
=========================  ====================================================  =========

Every episode ends by termination (never truncation); random policies score 0 on the
observation, memory and multi-agent probes.

Example:
    >>> env = ProbeObservation(num_envs=2, seed=0)
    >>> obs, _ = env.reset()
    >>> actions = (obs[:, 0] > 0).astype(np.int32)
    >>> env.step(actions)[1].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

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
    TERMINALS,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
    rng_integers,
    rng_uniform,
)

__all__ = [
    "ProbeConstant",
    "ProbeContinuous",
    "ProbeDelayed",
    "ProbeMemory",
    "ProbeMultiagent",
    "ProbeObservation",
]


@njit(cache=True, nogil=True, inline="always")
def _one_step(io: KernelIO, row: int, reward: float, terminal: bool) -> None:  # pragma: no cover
    """Write row ``row``'s reward and flags (never truncated) and count the step."""
    io[REWARDS][row] = reward
    io[EPISODE_RETURN][row] += reward
    io[EPISODE_LENGTH][row] += 1
    io[TERMINALS][row] = terminal
    io[TRUNCATIONS][row] = False


@njit(cache=True, nogil=True)
def _constant_step(lo: int, hi: int, io: KernelIO) -> None:  # pragma: no cover - numba
    obs = io[OBSERVATIONS]
    for i in range(lo, hi):
        _one_step(io, i, 1.0, True)
        end_episode(io, i, i, i + 1)
        obs[i, 0] = 0.0


@njit(cache=True, nogil=True)
def _sign_reset(lo: int, hi: int, io: KernelIO, target: np.ndarray) -> None:  # pragma: no cover
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        target[i] = 2.0 * rng_integers(rng, i, 2) - 1.0
        obs[i, 0] = target[i]


@njit(cache=True, nogil=True)
def _observation_step(
    lo: int, hi: int, io: KernelIO, target: np.ndarray
) -> None:  # pragma: no cover - numba
    actions = io[ACTIONS]
    for i in range(lo, hi):
        reward = 1.0 if (actions[i] == 1) == (target[i] > 0) else -1.0
        _one_step(io, i, reward, True)
        end_episode(io, i, i, i + 1)
    _sign_reset(lo, hi, io, target)


@njit(cache=True, nogil=True)
def _delayed_step(lo: int, hi: int, io: KernelIO) -> None:  # pragma: no cover - numba
    obs = io[OBSERVATIONS]
    for i in range(lo, hi):
        second = obs[i, 0] > 0.5
        _one_step(io, i, 1.0 if second else 0.0, second)
        if second:
            end_episode(io, i, i, i + 1)
            obs[i, 0] = 0.0
        else:
            obs[i, 0] = 1.0


@njit(cache=True, nogil=True)
def _memory_reset(
    lo: int, hi: int, io: KernelIO, cue: np.ndarray, clock: np.ndarray
) -> None:  # pragma: no cover - numba
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        cue[i] = 2.0 * rng_integers(rng, i, 2) - 1.0
        clock[i] = 0
        obs[i, 0] = cue[i]
        obs[i, 1] = 1.0


@njit(cache=True, nogil=True)
def _memory_step(
    lo: int, hi: int, io: KernelIO, cue: np.ndarray, clock: np.ndarray, delay: int
) -> None:  # pragma: no cover - numba
    actions, obs = io[ACTIONS], io[OBSERVATIONS]
    for i in range(lo, hi):
        clock[i] += 1
        last = clock[i] > delay
        reward = 0.0
        if last:
            reward = 1.0 if (actions[i] == 1) == (cue[i] > 0) else -1.0
        _one_step(io, i, reward, last)
        obs[i, 0] = 0.0
        obs[i, 1] = 0.0
        if last:
            end_episode(io, i, i, i + 1)
            _memory_reset(i, i + 1, io, cue, clock)


@njit(cache=True, nogil=True)
def _multiagent_reset(lo: int, hi: int, io: KernelIO, agents: int) -> None:  # pragma: no cover
    obs = io[OBSERVATIONS]
    for e in range(lo, hi):
        for k in range(agents):
            row = e * agents + k
            for j in range(agents):
                obs[row, j] = 1.0 if j == k else 0.0


@njit(cache=True, nogil=True)
def _multiagent_step(lo: int, hi: int, io: KernelIO, agents: int) -> None:  # pragma: no cover
    actions = io[ACTIONS]
    for e in range(lo, hi):
        for k in range(agents):
            row = e * agents + k
            _one_step(io, row, 1.0 if actions[row] == k % 2 else -1.0, True)
            end_episode(io, e, row, row + 1)


@njit(cache=True, nogil=True)
def _target_reset(lo: int, hi: int, io: KernelIO, target: np.ndarray) -> None:  # pragma: no cover
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        target[i] = np.float32(rng_uniform(rng, i, -1.0, 1.0))  # as observed
        obs[i, 0] = target[i]


@njit(cache=True, nogil=True)
def _continuous_step(
    lo: int, hi: int, io: KernelIO, target: np.ndarray
) -> None:  # pragma: no cover - numba
    actions = io[ACTIONS]
    for i in range(lo, hi):
        a = min(max(np.float64(actions[i, 0]), -1.0), 1.0)
        error = a - target[i]
        _one_step(io, i, 1.0 - error * error, True)
        end_episode(io, i, i, i + 1)
    _target_reset(lo, hi, io, target)


def _box1() -> spaces.Box:
    return spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)


class _Probe(NativeEnv):
    """Shared constructor of the probes (``num_envs`` copies, one agent each)."""

    optimal_return = 1.0

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        observation_space: spaces.Box | None = None,
        action_space: spaces.Space | None = None,
        agents_per_env: int = 1,
    ) -> None:
        super().__init__(
            num_envs,
            _box1() if observation_space is None else observation_space,
            spaces.Discrete(2) if action_space is None else action_space,
            agents_per_env=agents_per_env,
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
        )

    def render(self, row: int = 0) -> np.ndarray:
        """The row's observation as a strip of grey cells (black -1, white +1)."""
        values = np.clip((self.observations[row] + 1.0) * 127.5, 0, 255).astype(np.uint8)
        palette = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
        return draw.grid(values[None, :], palette, 32)


class ProbeConstant(_Probe):
    """``probe-constant-v1``: one step, observation 0, reward +1 (optimal return 1, V = 1)."""

    def reset_envs(self, lo: int, hi: int) -> None:
        """Write the constant observation."""
        self.observations[lo:hi] = 0.0

    def step_envs(self, lo: int, hi: int) -> None:
        """Reward +1 and end every episode."""
        _constant_step(lo, hi, self.io)


class ProbeObservation(_Probe):
    """``probe-observation-v1``: obs ±1; +1 for action 1 on +1 and 0 on -1, else -1 (optimal 1)."""

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``target``: the ±1 shown to each copy."""
        return {"target": np.zeros(num_envs, dtype=np.float64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw a fresh sign per copy."""
        _sign_reset(lo, hi, self.io, self.state["target"])

    def step_envs(self, lo: int, hi: int) -> None:
        """Reward the matching action and end every episode."""
        _observation_step(lo, hi, self.io, self.state["target"])


class ProbeDelayed(_Probe):
    """``probe-delayed-v1``: obs 0 then 1; reward +1 at the second step (optimal return 1)."""

    def reset_envs(self, lo: int, hi: int) -> None:
        """Start at the first step (observation 0)."""
        self.observations[lo:hi] = 0.0

    def step_envs(self, lo: int, hi: int) -> None:
        """Move to the second step, or reward +1 and end."""
        _delayed_step(lo, hi, self.io)


class ProbeMemory(_Probe):
    """``probe-memory-v1``: recall a ±1 cue after ``delay`` blank steps (optimal return 1).

    The observation is ``(cue, 1)`` on the first step and ``(0, 0)`` after; the action of the
    last of the ``delay + 1`` steps earns +1 when it is 1 for cue +1 (0 for cue -1), else -1.

    Args:
        delay: Blank steps between the cue and the decision (>= 1).
        **kwargs: As for every native env (``num_envs``, ``threads``, ``seed``...).
    """

    def __init__(self, num_envs: int = 1, *, delay: int = 1, **kwargs: Any) -> None:
        if int(delay) < 1:
            raise APIUsageError(f"delay must be >= 1, got {delay}")
        self.delay = int(delay)
        box = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        super().__init__(num_envs, observation_space=box, **kwargs)

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``cue`` (the ±1 to recall) and ``clock`` (steps since the cue)."""
        return {
            "cue": np.zeros(num_envs, dtype=np.float64),
            "clock": np.zeros(num_envs, dtype=np.int64),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Show a fresh cue."""
        _memory_reset(lo, hi, self.io, self.state["cue"], self.state["clock"])

    def step_envs(self, lo: int, hi: int) -> None:
        """Advance the clock; judge the action on the last step."""
        _memory_step(lo, hi, self.io, self.state["cue"], self.state["clock"], self.delay)


class ProbeMultiagent(_Probe):
    """``probe-multiagent-v1``: ``agents`` rows per copy; agent ``k`` should play ``k % 2``.

    Agent ``k`` observes one-hot(k) and earns +1 for action ``k % 2``, -1 otherwise; every
    step ends the episode. Optimal return 1 per agent.

    Args:
        agents: Agents per copy (>= 2).
        **kwargs: As for every native env (``num_envs``, ``threads``, ``seed``...).
    """

    def __init__(self, num_envs: int = 1, *, agents: int = 2, **kwargs: Any) -> None:
        if int(agents) < 2:
            raise APIUsageError(f"agents must be >= 2, got {agents}")
        self.agents = int(agents)
        box = spaces.Box(0.0, 1.0, (self.agents,), dtype=np.float32)
        super().__init__(num_envs, observation_space=box, agents_per_env=self.agents, **kwargs)

    def reset_envs(self, lo: int, hi: int) -> None:
        """Write each agent's one-hot id."""
        _multiagent_reset(lo, hi, self.io, self.agents)

    def step_envs(self, lo: int, hi: int) -> None:
        """Reward each agent for its own action and end the episode."""
        _multiagent_step(lo, hi, self.io, self.agents)


class ProbeContinuous(_Probe):
    """``probe-continuous-v1``: output the observed target in ``[-1, 1]`` (optimal return 1).

    The reward is ``1 - (clip(action, -1, 1) - target)^2``; every step ends the episode.
    """

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(num_envs, action_space=_box1(), **kwargs)

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``target``: the value to output."""
        return {"target": np.zeros(num_envs, dtype=np.float64)}

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw a fresh target per copy."""
        _target_reset(lo, hi, self.io, self.state["target"])

    def step_envs(self, lo: int, hi: int) -> None:
        """Reward closeness to the target and end every episode."""
        _continuous_step(lo, hi, self.io, self.state["target"])
