"""snake-v1: movement, food, deaths, masks of dead snakes, respawns and the egocentric view."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.envs.snake import EMPTY, FOOD, OTHER, OWN, WALL, Snake

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def _empty_env(num_snakes: int = 1, num_food: int = 0, **kwargs: object) -> Snake:
    env = Snake(num_envs=1, num_snakes=num_snakes, width=6, height=6, num_food=num_food, view=5,
                seed=0, **kwargs)  # type: ignore[arg-type]  # fmt: skip
    env.reset()
    s = env.state
    r = env.radius
    s["grid"][0, r:-r, r:-r] = EMPTY
    s["alive"][0] = False
    s["length"][0] = 0
    s["timer"][0] = 10**6  # nobody respawns unless a test says so
    s["food"][0] = 0
    env.masks[:] = False
    return env


def _place(env: Snake, k: int, cells: list[tuple[int, int]], heading: int) -> None:
    """Put snake ``k`` on cells (tail first, head last; unpadded coordinates)."""
    s, r = env.state, env.radius
    for j, (y, x) in enumerate(cells):
        s["body"][0, k, j] = (y + r, x + r)
        s["grid"][0, y + r, x + r] = 3 + k
    s["head"][0, k] = len(cells) - 1
    s["length"][0, k] = len(cells)
    s["heading"][0, k] = heading
    s["alive"][0, k] = True
    env.masks[k] = True


def _food(env: Snake, y: int, x: int) -> None:
    env.state["grid"][0, y + env.radius, x + env.radius] = FOOD
    env.state["food"][0] += 1


def _act(env: Snake, *actions: int) -> tuple[np.ndarray, ...]:
    return env.step(np.array(actions, dtype=np.int32))[:4]


def test_moving_and_ignoring_reversal() -> None:
    env = _empty_env()
    _place(env, 0, [(3, 1), (3, 2)], RIGHT)
    obs, rewards, terminals, _ = _act(env, LEFT)  # reversing keeps heading right
    assert rewards[0] == 0.0 and not terminals[0]
    view = obs[0].reshape(5, 5)
    assert view[2, 2] == OWN and view[2, 1] == OWN and view[2, 0] == EMPTY
    assert env.state["grid"][0, 3 + 2, 3 + 2] == 3 and env.state["grid"][0, 3 + 2, 1 + 2] == EMPTY
    _act(env, UP)
    head = env.state["body"][0, 0, env.state["head"][0, 0]] - env.radius
    assert head.tolist() == [2, 3]


def test_eating_grows_and_places_new_food() -> None:
    env = _empty_env(num_food=1)
    _place(env, 0, [(2, 2)], DOWN)
    _food(env, 3, 2)
    obs, rewards, terminals, _ = _act(env, DOWN)
    assert rewards[0] == 1.0 and not terminals[0]
    assert env.state["length"][0, 0] == 2
    assert (env.state["grid"][0] == FOOD).sum() == 1  # a new food somewhere else
    view = obs[0].reshape(5, 5)
    assert view[2, 2] == OWN and view[1, 2] == OWN


def test_wall_death_masks_row_until_respawn() -> None:
    env = _empty_env(respawn_delay=3)
    _place(env, 0, [(0, 1), (0, 2)], RIGHT)
    obs, rewards, terminals, truncations = _act(env, UP)
    assert rewards[0] == -1.0 and terminals[0] and not truncations[0]
    assert env.masks.tolist() == [False]
    assert not obs[0].any()
    final = env.final_observations[0].reshape(5, 5)
    assert final[2, 2] == OWN and final[0].tolist() == [WALL] * 5
    assert (env.state["grid"][0] >= 3).sum() == 0  # the body is gone
    for _ in range(2):
        obs, rewards, terminals, _ = _act(env, UP)
        assert env.masks.tolist() == [False] and not obs[0].any() and rewards[0] == 0.0
        assert not terminals[0]
    _act(env, UP)
    assert env.masks.tolist() == [True]
    assert env.observations[0].reshape(5, 5)[2, 2] == OWN
    assert env.state["length"][0, 0] == 1
    (info,) = env.flush_infos()
    assert info == {"episode_return": -1.0, "episode_length": 1.0, "num_episodes": 1,
                    "length": 2.0}  # fmt: skip


def test_collision_with_another_snake_and_views() -> None:
    env = _empty_env(num_snakes=2)
    _place(env, 0, [(2, 0), (2, 1)], RIGHT)
    _place(env, 1, [(1, 3), (2, 3), (3, 3)], DOWN)
    view0 = _act(env, UP, DOWN)[0][0].reshape(5, 5)  # snake 0 turns up, snake 1 goes down
    assert view0[2, 2] == OWN and view0[3, 2] == OWN
    assert env.observations[1].reshape(5, 5)[2, 2] == OWN
    assert env.observations[1].reshape(5, 5)[1, 2] == OWN
    assert OTHER in env.observations[0]


def test_running_into_another_snake_kills() -> None:
    env = _empty_env(num_snakes=2)
    _place(env, 0, [(2, 0), (2, 1)], RIGHT)
    _place(env, 1, [(3, 2), (2, 2), (1, 2)], UP)  # head (1, 2)
    _, rewards, terminals, _ = _act(env, RIGHT, UP)  # snake 0 hits snake 1's middle
    assert terminals.tolist() == [True, False] and rewards.tolist() == [-1.0, 0.0]
    assert env.masks.tolist() == [False, True]
    assert (env.state["grid"][0] == 3).sum() == 0 and (env.state["grid"][0] == 4).sum() == 3


def test_tail_moves_out_of_the_way() -> None:
    env = _empty_env()
    _place(env, 0, [(2, 2), (2, 3), (3, 3), (3, 2)], LEFT)  # head (3, 2), tail (2, 2)
    _, rewards, terminals, _ = _act(env, UP)  # into the cell the tail leaves
    assert not terminals[0] and rewards[0] == 0.0


def _reference_view(env: Snake, row: int) -> np.ndarray:
    e, k = divmod(row, env.num_snakes)
    r = env.radius
    head = env.state["body"][e, k, env.state["head"][e, k]]
    window = env.state["grid"][e, head[0] - r : head[0] + r + 1, head[1] - r : head[1] + r + 1]
    out = window.astype(np.int64).copy()
    out[window >= 3] = OTHER
    out[window == 3 + k] = OWN
    return out.reshape(-1)


def test_views_match_reference_and_dead_rows_are_masked() -> None:
    env = Snake(num_envs=3, num_snakes=4, width=12, height=10, seed=2, respawn_delay=5)
    env.reset()
    rng = np.random.default_rng(0)
    deaths = 0
    for _ in range(200):
        obs, rewards, terminals, _, _ = env.step(rng.integers(0, 4, 12).astype(np.int32))
        alive = env.state["alive"].reshape(-1)
        assert np.array_equal(env.masks, alive)
        deaths += int(terminals.sum())
        assert not (terminals & env.masks).any()  # a death masks the row
        for row in range(12):
            if alive[row]:
                assert np.array_equal(obs[row], _reference_view(env, row))
            else:
                assert not obs[row].any()
                assert rewards[row] == (-1.0 if terminals[row] else 0.0)
        for e in range(3):  # the grid holds exactly the live snakes' bodies
            for k in range(4):
                assert (env.state["grid"][e] == 3 + k).sum() == env.state["length"][e, k]
    assert deaths > 10


def test_long_lives_are_truncated_and_keep_going() -> None:
    env = _empty_env(max_steps=3)
    _place(env, 0, [(0, 0)], RIGHT)
    flags = [bool(_act(env, RIGHT if t < 2 else DOWN)[3][0]) for t in range(3)]
    assert flags == [False, False, True]
    assert env.masks.tolist() == [True]
    assert np.array_equal(env.final_observations[0], env.observations[0])


def test_invalid_actions_of_live_snakes_raise() -> None:
    env = _empty_env(num_snakes=2)
    _place(env, 0, [(2, 2)], RIGHT)
    _act(env, RIGHT, 7)  # snake 1 is dead: its action is ignored
    with pytest.raises(fugu.APIUsageError, match="0, 1, 2 or 3"):
        _act(env, 4, RIGHT)


def test_food_is_kept_at_num_food() -> None:
    env = Snake(num_envs=4, num_snakes=4, width=10, height=10, num_food=5, seed=1)
    env.reset()
    rng = np.random.default_rng(2)
    eaten = 0
    for _ in range(300):
        rewards = env.step(rng.integers(0, 4, 16).astype(np.int32))[1]
        eaten += int((rewards > 0).sum())
        assert ((env.state["grid"] == FOOD).sum(axis=(1, 2)) == 5).all()
        assert (env.state["food"] == 5).all()
    assert eaten > 0
