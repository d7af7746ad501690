"""bitflip-v1: hand-computed dynamics, truncation, goal layout and vectorized compute_reward."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

import fugu
from fugu.envs.bitflip import BitFlip, bitflip_reward


def _set(env: BitFlip, row: int, bits: list[int], goal: list[int]) -> None:
    env.state["bits"][row] = bits
    env.state["goal"][row] = goal


def test_flip_reward_termination_and_autoreset() -> None:
    env = BitFlip(num_envs=2, n=4, seed=0)
    env.reset()
    _set(env, 0, [0, 0, 0, 0], [0, 0, 1, 1])
    _set(env, 1, [1, 1, 1, 1], [1, 1, 1, 0])
    obs, rewards, terminals, truncations, _ = env.step(np.array([2, 3], dtype=np.int32))
    assert rewards.tolist() == [-1.0, 0.0]
    assert terminals.tolist() == [False, True] and not truncations.any()
    assert obs[0].tolist() == [0, 0, 1, 0] * 2 + [0, 0, 1, 1]
    assert env.final_observations[1].tolist() == [1, 1, 1, 0] * 3
    bits, achieved, desired = env.goal_layout.split(obs[1])
    assert np.array_equal(bits, achieved) and not np.array_equal(achieved, desired)
    _, rewards, terminals, _, _ = env.step(np.array([3, 0], dtype=np.int32))
    assert rewards[0] == 0.0 and terminals[0]


def test_truncation_after_max_steps() -> None:
    env = BitFlip(num_envs=1, n=4, max_steps=4, seed=1)
    env.reset()
    _set(env, 0, [0, 0, 0, 0], [1, 1, 1, 1])
    flags = []
    for _ in range(4):
        _, rewards, terminals, truncations, _ = env.step(np.zeros(1, dtype=np.int32))
        assert rewards[0] == -1.0 and not terminals[0]
        flags.append(bool(truncations[0]))
    assert flags == [False, False, False, True]
    assert env.final_observations[0, :4].tolist() == [0, 0, 0, 0]
    (info,) = env.flush_infos()
    assert info == {
        "episode_return": -4.0, "episode_length": 4.0, "num_episodes": 1, "success": 0.0,
    }  # fmt: skip


def test_resets_never_start_solved() -> None:
    env = BitFlip(num_envs=500, n=1, seed=3)
    obs, _ = env.reset()
    _, achieved, desired = env.goal_layout.split(obs)
    assert (achieved != desired).all()


def test_out_of_range_actions_raise() -> None:
    env = BitFlip(num_envs=2, n=4, seed=0)
    env.reset()
    with pytest.raises(fugu.APIUsageError, match=r"\[0, 4\)"):
        env.step(np.array([0, 4], dtype=np.int32))


def test_compute_reward_is_vectorized_over_any_leading_shape() -> None:
    rng = np.random.default_rng(0)
    achieved = rng.integers(0, 2, (5, 7, 3)).astype(np.float32)
    desired = rng.integers(0, 2, (5, 7, 3)).astype(np.float32)
    env = BitFlip(n=3)
    rewards = env.compute_reward(achieved, desired)
    expected = [[0.0 if (a == d).all() else -1.0 for a, d in zip(ra, rd)]
                for ra, rd in zip(achieved, desired)]  # fmt: skip
    assert rewards.shape == (5, 7) and rewards.dtype == np.float32
    assert rewards.tolist() == expected
    assert bitflip_reward(achieved[0, 0], achieved[0, 0]).shape == ()


def test_env_rewards_match_compute_reward() -> None:
    env = BitFlip(num_envs=64, n=3, seed=2)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(20):
        _, rewards, terminals, truncations, _ = env.step(rng.integers(0, 3, 64).astype(np.int32))
        done = terminals | truncations
        _, achieved, desired = env.goal_layout.split(env.observations)
        _, final_achieved, final_desired = env.goal_layout.split(env.final_observations)
        achieved = np.where(done[:, None], final_achieved, achieved)
        desired = np.where(done[:, None], final_desired, desired)
        assert np.array_equal(env.compute_reward(achieved, desired), rewards)
        assert np.array_equal(terminals, rewards == 0.0)


def test_goal_layout_and_dict_space() -> None:
    env = BitFlip(num_envs=1, n=6)
    layout = env.goal_layout
    assert (layout.observation, layout.achieved_goal, layout.desired_goal) == (
        slice(0, 6), slice(6, 12), slice(12, 18),
    )  # fmt: skip
    space = env.dict_observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.keys()) == {"observation", "achieved_goal", "desired_goal"}
    assert all(space[k].shape == (6,) for k in space)
    assert layout["achieved_goal"] == slice(6, 12)
    with pytest.raises(KeyError, match="goal layout keys"):
        layout["goal"]
    with pytest.raises(ValueError, match="last dimension 18"):
        layout.split(np.zeros((2, 5)))


def test_continuous_variant_flips_every_bit_with_a_positive_action() -> None:
    env = BitFlip(num_envs=2, n=4, seed=0, continuous=True)
    assert env.single_action_space.shape == (4,)
    obs, _ = env.reset()
    bits = obs[:, :4].copy()
    actions = np.array([[1.0, -1.0, 0.5, -0.2], [-1.0, -1.0, -1.0, -1.0]], dtype=np.float32)
    obs, rewards, terminals, truncations, _ = env.step(actions)
    live = ~(terminals | truncations)
    expected = bits.copy()
    expected[0, [0, 2]] = 1 - expected[0, [0, 2]]
    assert np.array_equal(obs[live, :4], expected[live])
    assert rewards[1] == -1.0 and not terminals[1]  # no flip: still differs from the goal
    env.close()
