"""deep-sea-v1: hand-computed dynamics, treasure, move cost, mapping and the contract."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.core.checker import check_env
from fugu.core.errors import APIUsageError
from fugu.envs.deep_sea import DeepSea


def _play(env: DeepSea, moves: list[bool]) -> tuple[float, list[np.ndarray], bool]:
    """Move right (True) or left (False) per step on row 0; (return, observations, terminal)."""
    right = env.right_actions()
    total, seen, terminal = 0.0, [], False
    for move in moves:
        r, c = env.positions()[0]
        a = right[r, c] if move else 1 - right[r, c]
        obs, rewards, terminals, truncations, _ = env.step(np.array([a], dtype=np.int32))
        assert not truncations[0]
        total += float(rewards[0])
        seen.append(obs[0].copy())
        terminal = bool(terminals[0])
    return total, seen, terminal


def test_always_right_finds_the_treasure_and_pays_the_move_cost() -> None:
    env = DeepSea(size=4, seed=0, info_interval=1)
    env.reset()
    total, seen, terminal = _play(env, [True] * 4)
    assert total == pytest.approx(1.0 - 0.01)
    assert terminal
    assert env.final_observations[0].sum() == 0.0  # off the grid after the last row
    assert seen[-1].reshape(4, 4)[0, 0] == 1.0  # same-step autoreset to the top-left
    assert env.flush_infos() == []  # already flushed at the step (info_interval=1)


def test_one_left_move_loses_the_treasure_and_positions_follow_the_moves() -> None:
    env = DeepSea(size=4, seed=0, info_interval=100)
    env.reset()
    total, seen, _ = _play(env, [True, False, True, True])
    # columns 1, 0, 1, 2: never the last one; three right moves cost 3 * 0.01 / 4
    assert total == pytest.approx(-0.0075)
    assert [int(np.argmax(o)) for o in seen[:3]] == [1 * 4 + 1, 2 * 4 + 0, 3 * 4 + 1]
    (info,) = env.flush_infos()
    assert info["success"] == 0.0 and info["episode_length"] == 4.0


def test_left_at_the_wall_stays_and_costs_nothing() -> None:
    env = DeepSea(size=3, seed=0, info_interval=3)
    env.reset()
    total, seen, _ = _play(env, [False, False])
    assert total == 0.0
    assert int(np.argmax(seen[1])) == 2 * 3 + 0


def test_mapping_depends_on_mapping_seed_only() -> None:
    a = DeepSea(num_envs=3, size=8, mapping_seed=1, seed=5).right_actions()
    b = DeepSea(num_envs=1, size=8, mapping_seed=1, seed=9).right_actions()
    c = DeepSea(size=8, mapping_seed=2).right_actions()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(np.unique(a)) == {0, 1}  # both actions mean "right" somewhere


def test_random_policy_rarely_succeeds_and_contract_holds() -> None:
    env = fugu.make("deep-sea-v1", num_envs=64, size=6, seed=0, info_interval=600)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(600):
        *_, infos = env.step(rng.integers(0, 2, 64).astype(np.int32))
    (info,) = infos
    assert info["num_episodes"] == 64 * 100
    assert 0.0 < info["success"] < 0.05  # 2**-6 = 0.016 expected
    check_env(lambda: fugu.make("deep-sea-v1", num_envs=3, size=5, seed=0))


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(APIUsageError, match="size"):
        DeepSea(size=1)
    env = DeepSea(size=3)
    env.reset()
    with pytest.raises(APIUsageError, match=r"0 or 1|must be in \[0, 2\)"):
        env.step(np.array([2], dtype=np.int32))
