"""Behaviour of the env contract's base class and buffers."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from fugu.core import APIUsageError, EnvBuffers, EnvContractError, PufferEnv, VecEnv


class Countdown(PufferEnv):
    """Each row counts down from 3; reaching 0 terminates, with reward 1 on that step."""

    def __init__(self, num_agents: int = 2, buffers: EnvBuffers | None = None) -> None:
        obs_space = spaces.Box(0, 3, (1,), np.float32)
        super().__init__(obs_space, spaces.Discrete(2), num_agents, buffers)
        self.left = np.full(num_agents, 3)

    def reset(self, seed=None):
        self.left[:] = 3
        self.observations[:, 0] = self.left
        return self.observations, []

    def step(self, actions):
        self._write_actions(actions)
        self.left -= 1
        done = self.left == 0
        self.rewards[:] = done
        self.terminals[:] = done
        self.truncations[:] = False
        self.final_observations[done, 0] = 0
        self.left[done] = 3
        self.observations[:, 0] = self.left
        infos = [{"episode_return": 1.0, "num_episodes": int(done.sum())}] if done.any() else []
        return self.observations, self.rewards, self.terminals, self.truncations, infos


def test_buffers_layout_follows_spaces():
    b = EnvBuffers.allocate(spaces.Box(0, 255, (2, 3), np.uint8), spaces.MultiDiscrete([3, 4]), 5)
    assert b.observations.shape == (5, 2, 3) and b.observations.dtype == np.uint8
    assert b.final_observations.shape == (5, 2, 3)
    assert b.actions.shape == (5, 2) and b.actions.dtype == np.int32
    assert b.rewards.dtype == np.float32 and b.terminals.dtype == np.bool_
    assert b.masks.all()
    box = EnvBuffers.allocate(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (2,)), 1)
    assert box.actions.shape == (1, 2) and box.actions.dtype == np.float32


def test_rows_are_views_and_env_adopts_them():
    big = EnvBuffers.allocate(spaces.Box(0, 3, (1,), np.float32), spaces.Discrete(2), 6)
    env = Countdown(3, buffers=big.rows(3, 6))
    env.reset()
    assert np.shares_memory(env.observations, big.observations)
    assert big.observations[3:, 0].tolist() == [3, 3, 3]
    assert big.observations[:3, 0].tolist() == [0, 0, 0]


def test_adopting_wrong_buffers_names_the_problem():
    wrong = EnvBuffers.allocate(spaces.Box(0, 3, (2,), np.float32), spaces.Discrete(2), 2)
    with pytest.raises(EnvContractError, match="'observations' must have shape"):
        Countdown(2, buffers=wrong)


def test_invalid_spaces_and_rows_are_rejected():
    with pytest.raises(EnvContractError, match="must be a Box"):
        PufferEnv(spaces.Discrete(2), spaces.Discrete(2), 1)
    with pytest.raises(EnvContractError, match="Discrete, MultiDiscrete or Box"):
        PufferEnv(spaces.Box(0, 1, (1,)), spaces.Dict({"a": spaces.Discrete(2)}), 1)
    with pytest.raises(EnvContractError, match="num_agents"):
        PufferEnv(spaces.Box(0, 1, (1,)), spaces.Discrete(2), 0)


def test_step_writes_actions_and_checks_shape():
    env = Countdown(2)
    env.reset()
    env.step(np.array([1, 0]))
    assert env.actions.tolist() == [1, 0]
    with pytest.raises(APIUsageError, match="one row per agent"):
        env.step(np.array([1, 0, 1]))


def test_send_recv_runs_one_batch_with_same_step_autoreset():
    env = Countdown(2)
    assert isinstance(env, VecEnv)
    env.async_reset(seed=0)
    batch = env.recv()
    assert batch.env_ids.tolist() == [0, 1]
    assert np.shares_memory(batch.observations, env.observations)
    for _ in range(3):
        env.send(np.zeros(2, dtype=np.int32))
        batch = env.recv()
    assert batch.terminals.all() and batch.rewards.tolist() == [1.0, 1.0]
    assert batch.final_observations[:, 0].tolist() == [0, 0]
    assert batch.observations[:, 0].tolist() == [3, 3]  # already the next episode
    assert batch.infos == [{"episode_return": 1.0, "num_episodes": 2}]


def test_calls_in_the_wrong_order_raise():
    env = Countdown(1)
    with pytest.raises(APIUsageError, match="before async_reset"):
        env.send(np.zeros(1, dtype=np.int32))
    with pytest.raises(APIUsageError, match="without a pending"):
        env.recv()
    env.async_reset()
    with pytest.raises(APIUsageError, match="twice without recv"):
        env.send(np.zeros(1, dtype=np.int32))
    env.recv()
    env.close()
    env.close()  # idempotent
    with pytest.raises(APIUsageError, match="closed"):
        env.async_reset()


def test_render_without_support_says_so():
    with pytest.raises(APIUsageError, match="does not implement render"):
        Countdown(1).render()
