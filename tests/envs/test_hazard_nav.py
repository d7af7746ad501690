"""hazard-nav-v1: costs inside hazards, episode_cost infos, rewards, observations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fugu.envs.hazard_nav import HazardNav


def _place(env: HazardNav, row: int, pos: list[float], goal: list[float], hazards: list) -> None:
    env.state["position"][row] = pos
    env.state["goal"][row] = goal
    env.state["hazards"][row] = hazards


def test_cost_is_one_inside_a_hazard() -> None:
    env = HazardNav(num_envs=2, num_hazards=2, seed=0)
    env.reset()
    _place(env, 0, [0.0, 0.0], [0.9, 0.9], [[0.05, 0.0], [-0.9, -0.9]])
    _place(env, 1, [0.0, 0.0], [0.9, 0.9], [[0.6, 0.0], [-0.9, -0.9]])
    action = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    obs, rewards, terminals, _, _ = env.step(action)
    assert env.costs.tolist() == [1.0, 0.0]
    before, after = math.hypot(0.9, 0.9), math.hypot(0.85, 0.9)
    assert rewards[0] == pytest.approx((before - after) * 10, abs=1e-5)
    assert not terminals.any()
    assert np.allclose(obs[0], [0.05, 0, 0.85, 0.9, 0.0, 0.0, -0.95, -0.9], atol=1e-6)
    assert env.costs.dtype == np.float32 and env.costs.shape == (2,)


def test_episode_cost_and_success_in_infos() -> None:
    env = HazardNav(num_envs=1, num_hazards=1, seed=0, info_interval=4)
    env.reset()
    _place(env, 0, [0.0, 0.0], [0.2, 0.0], [[0.05, 0.0]])
    infos = []
    for _ in range(4):
        *_, step_infos = env.step(np.array([[1.0, 0.0]], dtype=np.float32))
        infos += step_infos
    # positions 0.05 (cost), 0.10 (cost), 0.15 (cost, reaches the goal: distance 0.05)
    (info,) = infos
    assert info["episode_cost"] == 3.0 and info["success"] == 1.0
    assert info["episode_return"] == pytest.approx(0.2 * 10 - 0.05 * 10 + 1.0, abs=1e-5)
    assert info["episode_length"] == 3.0


def test_truncation_and_costs_follow_rows() -> None:
    env = HazardNav(num_envs=8, seed=3, max_steps=20)
    env.reset()
    for t in range(20):
        terminals, truncations = env.step(np.zeros((8, 2), dtype=np.float32))[2:4]
        assert not terminals.any() and truncations.all() == (t == 19)
        inside = [
            any(math.hypot(*(env.state["position"][i] - h)) < 0.2 for h in env.state["hazards"][i])
            for i in range(8)
        ]
        if t < 19:
            assert env.costs.tolist() == [float(x) for x in inside]


def test_resets_start_and_goal_outside_hazards() -> None:
    env = HazardNav(num_envs=200, seed=1)
    env.reset()
    s = env.state
    for i in range(200):
        for point in (s["position"][i], s["goal"][i]):
            assert min(np.linalg.norm(s["hazards"][i] - point, axis=1)) >= 0.2
        assert np.linalg.norm(s["position"][i] - s["goal"][i]) >= 0.5
