"""Envs carry Gymnasium-style batched spaces whose samples step them, and a readable repr."""

from __future__ import annotations

import numpy as np
import pytest

import fugu


@pytest.mark.parametrize("env_id", ["cartpole-v1", "pendulum-v1", "probe-multiagent-v1"])
def test_batched_spaces_sample_valid_action_batches(env_id):
    env = fugu.make(env_id, num_envs=3)
    try:
        rows = env.num_agents
        sample = env.action_space.sample()
        assert sample.shape == env.actions.shape and env.action_space.contains(sample)
        assert env.observation_space.shape == (rows, *env.single_observation_space.shape)
        env.reset(seed=0)
        obs, *_ = env.step(sample.astype(env.actions.dtype))
        assert obs.shape == env.observation_space.shape
        assert repr(env).startswith(f"{type(env).__name__}(num_envs={rows}, ")
        assert "single_action_space=" in repr(env)
    finally:
        env.close()


def test_batched_space_can_be_replaced():
    env = fugu.make("cartpole-v1", num_envs=2)
    env.action_space = "custom"
    assert env.action_space == "custom"
    assert np.asarray(env.observation_space.sample()).shape == (2, 4)


@pytest.mark.parametrize("num_envs", [2.5, 0, True])
def test_native_envs_reject_a_fractional_or_bad_num_envs(num_envs):
    with pytest.raises(fugu.APIUsageError, match="num_envs must be a whole number"):
        fugu.make("cartpole-v1", num_envs=num_envs)


def test_check_env_on_a_raw_gymnasium_env_says_to_wrap_it():
    import gymnasium

    from fugu.core.emulation import GymnasiumPufferEnv

    raw = gymnasium.make("CartPole-v1")
    with pytest.raises(fugu.EnvContractError, match=r"GymnasiumPufferEnv\(env\)"):
        fugu.check_env(raw)
    fugu.check_env(GymnasiumPufferEnv(raw))  # wrapped, it passes


@pytest.mark.parametrize(
    ("env_id", "actions", "message"),
    [
        ("cartpole-v1", [0, 2], r"must be in \[0, 2\)"),
        ("cartpole-v1", [0.7, 0.0], "whole numbers"),
        ("cartpole-v1", [2**40, 0], r"got 1099511627776"),
        ("probe-observation-v1", [-1, 0], r"must be in \[0, 2\)"),
        ("pendulum-v1", [[float("nan")], [0.0]], "contain NaN"),
    ],
)
def test_user_actions_outside_the_space_raise(env_id, actions, message):
    env = fugu.make(env_id, num_envs=2)
    try:
        env.reset(seed=0)
        with pytest.raises(fugu.APIUsageError, match=message):
            env.step(np.array(actions))
        env.check_actions = False  # the documented opt-out
        env.step(np.zeros_like(env.actions))
    finally:
        env.close()
