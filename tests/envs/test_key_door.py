"""key-door-v1: the door blocks without the key, the key opens it, the goal alone pays."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.core.checker import check_env
from fugu.core.errors import APIUsageError
from fugu.envs.key_door import AGENT, DOOR, KEY, KeyDoor

UP, RIGHT, DOWN, LEFT = range(4)


def _walk(env: KeyDoor, moves: list[int]) -> list[tuple[float, bool, bool]]:
    """(reward, terminal, truncation) of copy 0 after each move."""
    out = []
    for a in moves:
        _, rewards, terminals, truncations, _ = env.step(np.full(env.num_agents, a, np.int32))
        out.append((float(rewards[0]), bool(terminals[0]), bool(truncations[0])))
    return out


def _solution(n: int) -> list[int]:
    """Start (1, 1) -> key (n, 1) -> door (1, n + 1) -> goal (n, 2n + 1): 5n - 3 moves."""
    return [DOWN] * (n - 1) + [UP] * (n - 1) + [RIGHT] * (2 * n) + [DOWN] * (n - 1)


def test_the_door_blocks_without_the_key() -> None:
    env = KeyDoor(room_size=3, seed=0)
    env.reset()
    steps = _walk(env, [RIGHT] * 6)  # along the top row, into the shut door
    assert env.positions()[0].tolist() == [1, 3]  # beside the door, never through it
    assert all(r == 0.0 and not t for r, t, _ in steps)
    assert env.observations[0, DOOR, 1, 4] == 255 and not env.holding_key()[0]


def test_the_key_opens_the_door_and_the_goal_pays_once_at_the_end() -> None:
    n = 3
    env = KeyDoor(room_size=n, seed=0, info_interval=1000)
    env.reset()
    moves = _solution(n)
    steps = _walk(env, moves[:-1])
    assert all(r == 0.0 and not t and not tr for r, t, tr in steps)  # nothing before the goal
    assert env.holding_key()[0]
    assert env.observations[0, KEY].sum() == 0 and env.observations[0, DOOR].sum() == 0
    ((reward, terminal, truncation),) = _walk(env, moves[-1:])
    assert terminal and not truncation
    assert len(moves) == 5 * n - 3
    assert reward == pytest.approx(1.0 - 0.9 * len(moves) / env.max_steps)
    # same-step autoreset: the next episode starts with the key back and the door shut
    assert env.positions()[0].tolist() == [1, 1] and not env.holding_key()[0]
    assert env.observations[0, KEY, n, 1] == 255 and env.observations[0, DOOR, 1, n + 1] == 255
    assert env.final_observations[0, AGENT, n, 2 * n + 1] == 255
    (info,) = env.flush_infos()
    assert info["success"] == 1.0 and info["episode_length"] == len(moves)


def test_time_limit_truncates_without_reward() -> None:
    env = KeyDoor(room_size=2, max_steps=5, seed=0, info_interval=100)
    env.reset()
    steps = _walk(env, [LEFT] * 5)
    assert [tr for _, _, tr in steps] == [False] * 4 + [True]
    assert not any(t for _, t, _ in steps) and sum(r for r, _, _ in steps) == 0.0
    (info,) = env.flush_infos()
    assert info["success"] == 0.0 and info["episode_return"] == 0.0


def test_seeded_runs_are_identical_and_random_play_rarely_succeeds() -> None:
    def play(seed: int) -> tuple[np.ndarray, list]:
        env = fugu.make("key-door-v1", num_envs=64, seed=seed, info_interval=75 * 20)
        env.reset()
        rng = np.random.default_rng(seed)
        frames = []
        for _ in range(75 * 20):
            obs, *_, infos = env.step(rng.integers(0, 4, 64).astype(np.int32))
            frames.append(obs[:, AGENT].argmax(-1).sum())
        return np.array(frames), infos

    a, infos = play(0)
    b, _ = play(0)
    assert np.array_equal(a, b)
    (info,) = infos
    assert info["num_episodes"] == 64 * 20
    assert info["success"] < 0.02  # about 1 in 400 episodes


def test_contract_heatmap_cells_and_bad_input() -> None:
    check_env(lambda: fugu.make("key-door-v1", num_envs=3, room_size=3, seed=0))
    env = KeyDoor(room_size=2)
    h, w = env.grid_shape
    cells = env.cell_observations()
    assert cells.shape == (h * w, *env.single_observation_space.shape)
    assert (cells[:, AGENT].reshape(h * w, -1).argmax(-1) == np.arange(h * w)).all()
    assert env.cell_observations(holding_key=True)[:, KEY].sum() == 0
    assert env.render().dtype == np.uint8
    with pytest.raises(APIUsageError, match="room_size"):
        KeyDoor(room_size=1)
    env.reset()
    with pytest.raises(APIUsageError, match=r"\[0, 4\)"):
        env.step(np.array([4], dtype=np.int32))
