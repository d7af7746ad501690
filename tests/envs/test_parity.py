"""Gymnasium parity: cartpole-v1, cartpole-continuous-v1 and pendulum-v1 step for step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from fugu.envs.cartpole import CartPole, CartPoleContinuous
from fugu.envs.pendulum import Pendulum


def _sync(env: CartPole | Pendulum, physics: np.ndarray, obs: np.ndarray) -> None:
    state = env.get_state()
    state["physics"][0] = physics
    state["observations"][0] = obs
    state["episode_length"][0] = 0
    env.set_state(state)


def _run_cartpole(seed: int, continuous: bool) -> int:
    reference = gym.make("CartPole-v1")
    obs, _ = reference.reset(seed=seed)
    env = CartPoleContinuous(seed=seed) if continuous else CartPole(seed=seed)
    env.reset()
    _sync(env, reference.unwrapped.state, obs)
    rng = np.random.default_rng(seed)
    episodes = 0
    for _ in range(1200):
        # a mostly-balancing policy so that episodes reach the 500-step time limit
        if rng.random() < 0.8:
            push = float(np.clip(obs[2] + 0.5 * obs[3] + 0.01 * obs[1], -1, 1) * 4)
        else:
            push = float(rng.uniform(-1, 1))
        if continuous:
            a = np.float32(np.clip(push, -1, 1))
            reference.unwrapped.force_mag = 10.0 * abs(float(a))
            gym_action = int(a > 0)
            env.actions[0, 0] = a
        else:
            gym_action = int(push > 0)
            env.actions[0] = gym_action
        obs, reward, terminated, truncated, _ = reference.step(gym_action)
        ours, rewards, terminals, truncations, _ = env.step(env.actions)
        done = bool(terminals[0] or truncations[0])
        seen = env.final_observations[0] if done else ours[0]
        np.testing.assert_array_equal(seen, obs)
        assert rewards[0] == reward
        assert (bool(terminals[0]), bool(truncations[0])) == (terminated, truncated)
        if done:
            episodes += 1
            obs, _ = reference.reset()
            _sync(env, reference.unwrapped.state, obs)
    reference.close()
    return episodes


def test_spaces_match_gymnasium() -> None:
    for ours, theirs in ((CartPole(), "CartPole-v1"), (Pendulum(), "Pendulum-v1")):
        reference = gym.make(theirs)
        assert ours.single_observation_space == reference.observation_space
        assert ours.single_action_space == reference.action_space


@pytest.mark.parametrize("continuous", [False, True])
def test_cartpole_matches_gymnasium(continuous: bool) -> None:
    assert _run_cartpole(seed=3, continuous=continuous) >= 2


def test_cartpole_reaches_truncation_at_step_500() -> None:
    reference = gym.make("CartPole-v1")
    obs, _ = reference.reset(seed=0)
    env = CartPole(seed=0)
    env.reset()
    _sync(env, reference.unwrapped.state, obs)
    for step in range(1, 501):
        action = int(obs[2] + 0.5 * obs[3] > 0)
        obs, reward, terminated, truncated, _ = reference.step(action)
        _, rewards, terminals, truncations, _ = env.step(np.array([action], np.int32))
        assert rewards[0] == reward
        assert (bool(terminals[0]), bool(truncations[0])) == (terminated, truncated)
        if terminated:
            pytest.fail(f"the balancing policy fell at step {step}")
    assert truncated and bool(truncations[0])
    np.testing.assert_array_equal(env.final_observations[0], obs)
    assert env.state["episode_length"][0] == 0  # autoreset started a new episode


def test_pendulum_matches_gymnasium() -> None:
    reference = gym.make("Pendulum-v1")
    obs, _ = reference.reset(seed=5)
    env = Pendulum(seed=5)
    env.reset()
    _sync(env, reference.unwrapped.state, obs)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(450):
        action = rng.uniform(-3, 3, (1,)).astype(np.float32)  # beyond the bounds: clipped
        obs, reward, terminated, truncated, _ = reference.step(action)
        ours, rewards, terminals, truncations, _ = env.step(action[None])
        done = bool(truncations[0])
        np.testing.assert_array_equal(env.final_observations[0] if done else ours[0], obs)
        assert rewards[0] == np.float32(reward)
        assert (bool(terminals[0]), done) == (terminated, truncated)
        if done:
            ends += 1
            obs, _ = reference.reset()
            _sync(env, reference.unwrapped.state, obs)
    assert ends == 2
