"""Shared behaviour of the game/goal/cost envs: thread-count determinism, state round trips,
rendering, and the registry ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

import fugu

CASES: list[tuple[str, dict[str, Any]]] = [
    ("snake-v1", {"num_snakes": 3, "width": 10, "height": 10}),
    ("connect4-v1", {}),
    ("connect4-v1", {"opponent": "one_ply"}),
    ("breakout-v1", {}),
    ("breakout-v1", {"obs_mode": "pixels"}),
    ("bitflip-v1", {"n": 5}),
    ("pointgoal-v1", {}),
    ("hazard-nav-v1", {}),
]


def _actions(env: Any, rng: np.random.Generator) -> np.ndarray:
    space = env.single_action_space
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, int(space.n), env.num_agents).astype(np.int32)
    return rng.uniform(-1, 1, (env.num_agents, *space.shape)).astype(np.float32)


def _trajectory(env: Any, steps: int, seed: int = 3) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        obs, rew, term, trunc, _ = env.step(_actions(env, rng))
        done = term | trunc
        out.append(
            (obs.copy(), rew.copy(), term.copy(), trunc.copy(), env.masks.copy(),
             env.final_observations[done].copy())
        )  # fmt: skip
    return out


def _same(a: list[tuple[np.ndarray, ...]], b: list[tuple[np.ndarray, ...]]) -> bool:
    return all(all(np.array_equal(x, y) for x, y in zip(s, t)) for s, t in zip(a, b))


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_threads_do_not_change_results(env_id: str, kwargs: dict[str, Any]) -> None:
    one = fugu.make(env_id, num_envs=7, threads=1, seed=11, **kwargs)
    three = fugu.make(env_id, num_envs=7, threads=3, seed=11, **kwargs)
    one.reset()
    three.reset()
    assert _same(_trajectory(one, 150), _trajectory(three, 150))
    one.close()
    three.close()


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_get_state_set_state_round_trip(env_id: str, kwargs: dict[str, Any]) -> None:
    env = fugu.make(env_id, num_envs=4, seed=5, **kwargs)
    env.reset()
    _trajectory(env, 40, seed=1)
    state = env.get_state()
    masks = env.masks.copy()
    first = _trajectory(env, 60, seed=2)
    env.set_state(state)
    assert np.array_equal(env.masks, masks)
    assert _same(first, _trajectory(env, 60, seed=2))
    other = fugu.make(env_id, num_envs=4, seed=99, **kwargs)
    other.reset()
    other.set_state(state)
    assert _same(first, _trajectory(other, 60, seed=2))


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_render_is_rgb(env_id: str, kwargs: dict[str, Any]) -> None:
    env = fugu.make(env_id, num_envs=2, seed=0, **kwargs)
    env.reset()
    img = env.render(env.num_agents - 1)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.min() < img.max()


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_episode_infos_are_aggregated(env_id: str, kwargs: dict[str, Any]) -> None:
    env = fugu.make(env_id, num_envs=16, seed=0, info_interval=1000, **kwargs)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert env.step(_actions(env, rng))[4] == []
    (info,) = env.flush_infos()
    assert info["num_episodes"] > 0
    for key in ("episode_return", "episode_length", *type(env).score_keys):
        assert np.isfinite(info[key])


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("snake-v1", {"view": 4}),
        ("snake-v1", {"num_snakes": 0}),
        ("connect4-v1", {"opponent": "minimax"}),
        ("connect4-v1", {"illegal_move": "skip"}),
        ("breakout-v1", {"obs_mode": "rgb"}),
        ("breakout-v1", {"lives": 0}),
        ("bitflip-v1", {"n": 0}),
        ("bitflip-v1", {"max_steps": 0}),
        ("pointgoal-v1", {"max_speed": 0.0}),
        ("hazard-nav-v1", {"goal_radius": 0.0}),
        ("hazard-nav-v1", {"max_steps": 0}),
    ],
)
def test_bad_parameters_raise(env_id: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(fugu.APIUsageError):
        fugu.make(env_id, **kwargs)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_check_env_with_threads_and_double_buffered_batches(
    env_id: str, kwargs: dict[str, Any]
) -> None:
    rows = fugu.make(env_id, num_envs=4, **kwargs).num_agents
    fugu.check_env(
        lambda: fugu.make(env_id, num_envs=4, threads=2, batch_size=rows // 2, **kwargs),
        num_steps=100,
    )
