"""Probe envs: the documented optimal policy earns the documented optimal return."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.core.errors import APIUsageError
from fugu.envs.probes import ProbeMemory, ProbeMultiagent


def _mean_return(env_id: str, policy, steps: int = 40, **kwargs: object) -> float:  # type: ignore[no-untyped-def]
    env = fugu.make(env_id, num_envs=16, seed=0, info_interval=steps, **kwargs)
    obs, _ = env.reset()
    infos = []
    memory = np.zeros(env.num_agents, dtype=np.float32)
    for _ in range(steps):
        memory = np.where(obs[:, -1] == 1.0, obs[:, 0], memory) if obs.shape[1] == 2 else memory
        *_, infos = env.step(policy(obs, memory, env))
    (info,) = infos
    assert info["num_episodes"] > 0
    return float(info["episode_return"])


def _zeros(obs, memory, env):  # type: ignore[no-untyped-def]
    return np.zeros_like(env.actions)


def test_constant() -> None:
    assert _mean_return("probe-constant-v1", _zeros) == 1.0


def test_observation() -> None:
    best = _mean_return("probe-observation-v1", lambda o, m, e: (o[:, 0] > 0).astype(np.int32))
    assert best == 1.0
    assert _mean_return("probe-observation-v1", _zeros) < 0.5


def test_delayed() -> None:
    env = fugu.make("probe-delayed-v1", num_envs=2, seed=0)
    obs, _ = env.reset()
    assert obs[:, 0].tolist() == [0.0, 0.0]
    _, rewards, terminals, _, _ = env.step(np.zeros(2, np.int32))
    assert rewards.tolist() == [0.0, 0.0] and not terminals.any() and obs[0, 0] == 1.0
    _, rewards, terminals, _, _ = env.step(np.zeros(2, np.int32))
    assert rewards.tolist() == [1.0, 1.0] and terminals.all()
    assert env.final_observations[:, 0].tolist() == [1.0, 1.0] and obs[0, 0] == 0.0


@pytest.mark.parametrize("delay", [1, 3])
def test_memory_needs_recall(delay: int) -> None:
    def recall(obs, memory, env):  # type: ignore[no-untyped-def]
        return (memory > 0).astype(np.int32)

    assert _mean_return("probe-memory-v1", recall, 60, delay=delay) == 1.0
    assert _mean_return("probe-memory-v1", _zeros, 60, delay=delay) < 0.6
    env = ProbeMemory(1, delay=delay, seed=0)
    env.reset()
    for _ in range(delay):
        _, _, terminals, _, _ = env.step(np.zeros(1, np.int32))
        assert not terminals[0] and env.observations[0].tolist() == [0.0, 0.0]
    assert env.step(np.zeros(1, np.int32))[2][0]
    with pytest.raises(APIUsageError, match="delay"):
        ProbeMemory(1, delay=0)


def test_multiagent() -> None:
    best = _mean_return(
        "probe-multiagent-v1", lambda o, m, e: (np.argmax(o, axis=1) % 2).astype(np.int32), 10
    )
    assert best == 1.0
    with pytest.raises(APIUsageError, match="agents"):
        ProbeMultiagent(1, agents=1)


def test_continuous() -> None:
    best = _mean_return("probe-continuous-v1", lambda o, m, e: o.copy())
    assert best == pytest.approx(1.0)
    assert _mean_return("probe-continuous-v1", _zeros) < 0.8
