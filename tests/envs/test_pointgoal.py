"""pointgoal-v1: dynamics against a pure-Python reference, rewards, compute_reward, options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fugu.envs.pointgoal import PointGoal, pointgoal_reward


def _reference_step(pos: list[float], goal: list[float], action: list[float]) -> tuple:
    new = [min(max(p + 0.1 * min(max(a, -1.0), 1.0), -1.0), 1.0) for p, a in zip(pos, action)]
    dist = math.hypot(new[0] - goal[0], new[1] - goal[1])
    return new, dist


def test_dynamics_match_reference() -> None:
    env = PointGoal(num_envs=16, seed=4)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(30):
        pos = env.state["position"].copy()
        goal = env.state["goal"].copy()
        actions = rng.uniform(-2, 2, (16, 2)).astype(np.float32)
        obs, rewards, terminals, truncations, _ = env.step(actions)
        assert not terminals.any()
        for i in range(16):
            new, dist = _reference_step(list(pos[i]), list(goal[i]), [float(a) for a in actions[i]])
            row = env.final_observations[i] if truncations[i] else obs[i]
            assert np.allclose(row[:2], new, atol=1e-6) and np.allclose(row[2:4], new, atol=1e-6)
            assert np.allclose(row[4:], goal[i], atol=1e-6)
            assert rewards[i] == (0.0 if dist < 0.1 else -1.0)


def test_truncation_at_50_and_success_termination_option() -> None:
    env = PointGoal(num_envs=3, seed=0)
    env.reset()
    for t in range(50):
        truncations = env.step(np.zeros((3, 2), dtype=np.float32))[3]
        assert truncations.all() == (t == 49)
    env = PointGoal(num_envs=1, seed=0, terminate_on_success=True)
    env.reset()
    env.state["position"][0] = [0.0, 0.0]
    env.state["goal"][0] = [0.15, 0.0]
    _, rewards, terminals, _, _ = env.step(np.array([[1.0, 0.0]], dtype=np.float32))
    assert rewards[0] == 0.0 and terminals[0]
    assert np.allclose(env.final_observations[0], [0.1, 0, 0.1, 0, 0.15, 0], atol=1e-6)
    assert env.flush_infos()[0]["success"] == 1.0


def test_dense_reward_is_negative_distance() -> None:
    env = PointGoal(num_envs=1, seed=0, dense=True)
    env.reset()
    env.state["position"][0] = [0.0, 0.0]
    env.state["goal"][0] = [0.5, 0.5]
    rewards = env.step(np.array([[1.0, 1.0]], dtype=np.float32))[1]
    assert rewards[0] == pytest.approx(-math.hypot(0.4, 0.4), abs=1e-6)
    assert env.compute_reward(np.zeros(2), np.array([3.0, 4.0])) == pytest.approx(-5.0)


def test_compute_reward_vectorized_and_matches_env() -> None:
    rng = np.random.default_rng(1)
    achieved = rng.uniform(-1, 1, (4, 6, 2))
    desired = achieved + rng.normal(0, 0.08, (4, 6, 2))
    rewards = pointgoal_reward(achieved, desired)
    assert rewards.shape == (4, 6) and rewards.dtype == np.float32
    dist = np.linalg.norm(achieved - desired, axis=-1)
    assert np.array_equal(rewards, np.where(dist < 0.1, 0.0, -1.0))
    env = PointGoal(num_envs=32, seed=2)
    env.reset()
    rewards = env.step(rng.uniform(-1, 1, (32, 2)).astype(np.float32))[1]
    _, ach, des = env.goal_layout.split(env.observations)
    assert np.array_equal(env.compute_reward(ach, des), rewards)
    keys = set(env.dict_observation_space.keys())
    assert keys == {"observation", "achieved_goal", "desired_goal"}
