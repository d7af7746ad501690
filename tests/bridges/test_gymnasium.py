"""Gymnasium ids, instances and factories brought into fugu (fugu.bridges.gymnasium)."""

from __future__ import annotations

import pickle

import gymnasium
import numpy as np
import pytest

from fugu.bridges.gymnasium import (
    GymnasiumEnvCreator,
    GymnasiumPufferEnv,
    from_gymnasium,
    gymnasium_env_creator,
)
from fugu.core import APIUsageError, EnvBuffers
from fugu.core.checker import check_env


def test_from_gymnasium_accepts_ids_instances_and_factories(chain_gym_cls):
    by_id = from_gymnasium("CartPole-v1", max_episode_steps=10)
    assert by_id.env.spec.max_episode_steps == 10
    instance = from_gymnasium(chain_gym_cls())
    factory = from_gymnasium(chain_gym_cls)
    for env in (by_id, instance, factory):
        assert isinstance(env, GymnasiumPufferEnv) and env.num_agents == 1
        env.reset(seed=1)
        env.step(np.ones(1, np.int32))
        env.close()
    with pytest.raises(APIUsageError, match="only apply to Gymnasium ids"):
        from_gymnasium(chain_gym_cls(), max_episode_steps=3)


def test_chain_trajectory_and_autoreset(chain_gym_cls):
    env = from_gymnasium(chain_gym_cls)
    obs, _ = env.reset(seed=1)  # starts at position 1
    assert obs[0].tolist() == [0.25, 0.0]
    for _t in range(1, 4):
        obs, rewards, terminals, truncations, infos = env.step(np.ones(1, np.int32))
    assert terminals[0] and rewards[0] == 1.0 and not truncations[0]
    assert env.final_observations[0].tolist() == [1.0, 3 / 8]
    assert obs[0].tolist() == [0.0, 0.0]  # the next episode (unseeded reset starts at 0)
    assert infos == [{"episode_return": 1.0, "episode_length": 3, "num_episodes": 1}]
    for _ in range(8):  # walking left never reaches the goal: truncated after 8 steps
        obs, rewards, terminals, truncations, infos = env.step(np.zeros(1, np.int32))
    assert truncations[0] and not terminals[0]
    assert infos[0]["episode_length"] == 8 and infos[0]["episode_return"] == 0.0
    check_env(lambda: from_gymnasium(chain_gym_cls), num_steps=40)


def test_creator_is_picklable_and_adopts_buffers():
    creator = gymnasium_env_creator("CartPole-v1", max_episode_steps=20)
    assert isinstance(creator, GymnasiumEnvCreator)
    clone = pickle.loads(pickle.dumps(creator))
    probe = clone()
    buffers = EnvBuffers.allocate(probe.single_observation_space, probe.single_action_space, 2)
    env = clone(buffers=buffers.rows(1, 2), max_episode_steps=5)
    assert env.env.spec.max_episode_steps == 5
    env.reset(seed=0)
    assert np.shares_memory(env.observations, buffers.observations)
    assert buffers.observations[1].any() and not buffers.observations[0].any()
    for env_ in (probe, env):
        env_.close()
    with pytest.raises(APIUsageError, match="not a Gymnasium id"):
        gymnasium_env_creator("NoSuchEnv-v0")


def test_serial_style_loop_matches_sync_vector_env():
    """Several wrapped envs stepped in a loop reproduce gymnasium's SyncVectorEnv rewards."""
    envs = [from_gymnasium("CartPole-v1") for _ in range(3)]
    vec = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make("CartPole-v1") for _ in range(3)],
        autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP,
    )
    obs, _ = vec.reset(seed=[0, 1, 2])
    for i, env in enumerate(envs):
        np.testing.assert_array_equal(env.reset(seed=i)[0][0], obs[i])
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = rng.integers(0, 2, 3)
        obs, rewards, terms, truncs, _ = vec.step(actions)
        for i, env in enumerate(envs):
            row_obs, row_rew, row_term, row_trunc, _ = env.step(actions[i : i + 1].astype(np.int32))
            np.testing.assert_array_equal(row_obs[0], obs[i])
            assert (row_rew[0], row_term[0], row_trunc[0]) == (rewards[i], terms[i], truncs[i])
    vec.close()
    for env in envs:
        env.close()
