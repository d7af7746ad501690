"""breakout-v1: dynamics against a pure-Python reference, observations in both modes."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.envs.breakout import (
    BRICK_COLS,
    BRICK_H,
    BRICK_ROWS,
    BRICK_TOP,
    BRICK_W,
    HEIGHT,
    PADDLE_W,
    PADDLE_Y,
    WIDTH,
    Breakout,
    frame,
)


def _brick(bricks: list[int], x: int, y: int) -> int:
    if not (BRICK_TOP <= y < BRICK_TOP + BRICK_ROWS * BRICK_H and 0 <= x < WIDTH):
        return -1
    b = (y - BRICK_TOP) // BRICK_H * BRICK_COLS + x // BRICK_W
    return b if bricks[b] else -1


def _reference_step(objects: list[int], bricks: list[int], action: int) -> tuple[float, bool]:
    """One step of the documented rules; returns (reward, ball missed)."""
    px, x, y, vx, vy = objects[:5]
    px = max(0, px - 2) if action == 1 else min(WIDTH - PADDLE_W, px + 2) if action == 2 else px
    reward = 0.0
    nx = x + vx
    if not 0 <= nx < WIDTH:
        vx = -vx
        nx = x + vx
    b = _brick(bricks, nx, y)
    if b >= 0:
        bricks[b] = 0
        reward += 1
        vx, nx = -vx, x
    x = nx
    ny = y + vy
    if ny < 0:
        vy, ny = 1, y + 1
    b = _brick(bricks, x, ny)
    if b >= 0:
        bricks[b] = 0
        reward += 1
        vy, ny = -vy, y
    elif ny == PADDLE_Y and vy > 0 and px <= x < px + PADDLE_W:
        vy, vx, ny = -1, (-1 if x < px + PADDLE_W // 2 else 1), y
    objects[:5] = [px, x, ny, vx, vy]
    return reward, ny >= HEIGHT - 1


def test_dynamics_match_reference() -> None:
    env = Breakout(num_envs=6, seed=7, lives=2)
    env.reset()
    rng = np.random.default_rng(0)
    compared = breaks = 0
    for _ in range(3000):
        objects = env.state["objects"].copy()
        bricks = env.state["bricks"].copy()
        actions = rng.integers(0, 3, 6).astype(np.int32)
        _, rewards, terminals, truncations, _ = env.step(actions)
        for i in range(6):
            ref_objects = [int(v) for v in objects[i]]
            ref_bricks = [int(v) for v in bricks[i]]
            reward, missed = _reference_step(ref_objects, ref_bricks, int(actions[i]))
            assert rewards[i] == reward
            breaks += int(reward > 0)
            if terminals[i] or truncations[i]:
                continue
            if missed:
                assert env.state["objects"][i, 5] == objects[i, 5] - 1
                assert env.state["objects"][i, 2] == 20 and env.state["objects"][i, 4] == 1
            else:
                assert env.state["objects"][i, :5].tolist() == ref_objects[:5]
                compared += 1
            assert env.state["bricks"][i].tolist() == ref_bricks
    assert compared > 10000 and breaks > 20


def test_vector_observation_layout() -> None:
    env = Breakout(num_envs=1, seed=0)
    obs, _ = env.reset()
    px, bx, by, vx, vy, lives, left = env.state["objects"][0]
    assert obs[0, :6].tolist() == pytest.approx([(px + 3) / 32, bx / 32, by / 42, vx, vy, 1.0])
    assert obs[0, 6:].tolist() == [1.0] * 32 and left == 32 and lives == 3


def test_pixels_track_the_state_and_final_frames() -> None:
    env = Breakout(num_envs=8, obs_mode="pixels", seed=3, lives=1)
    obs, _ = env.reset()
    assert obs.shape == (8, 1, HEIGHT, WIDTH) and obs.dtype == np.uint8
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(400):
        before = [(env.state["objects"][i].copy(), env.state["bricks"][i].copy()) for i in range(8)]
        obs, _, terminals, _, _ = env.step(rng.integers(0, 3, 8).astype(np.int32))
        for i in range(8):
            assert np.array_equal(obs[i, 0], frame(env.state["objects"][i], env.state["bricks"][i]))
            if terminals[i]:
                ended += 1
                final = env.final_observations[i, 0]
                assert (final == 128).sum() <= (frame(*before[i]) == 128).sum()
                assert (final == 200).sum() == PADDLE_W
    assert ended > 0


def test_losing_every_life_terminates_and_reports_bricks() -> None:
    env = Breakout(num_envs=1, seed=0, lives=1, info_interval=1)
    env.reset()
    env.state["objects"][0, :5] = [0, 30, 39, 1, 1]  # ball about to pass far from the paddle
    infos = []
    for _ in range(3):
        *_, terminals, _, step_infos = env.step(np.zeros(1, dtype=np.int32))
        infos += step_infos
        if terminals[0]:
            break
    assert terminals[0]
    assert infos == [{"episode_return": 0.0, "episode_length": 2.0, "num_episodes": 1,
                      "bricks": 0.0}]  # fmt: skip


def test_breaking_the_last_brick_terminates() -> None:
    env = Breakout(num_envs=1, seed=0)
    env.reset()
    env.state["bricks"][0] = 0
    env.state["bricks"][0, 31] = 1  # bottom-right brick: pixels x 28-31, y 14-15
    env.state["objects"][0, 6] = 1
    env.state["objects"][0, :5] = [0, 29, 17, 1, -1]
    _, rewards, terminals, _, _ = env.step(np.zeros(1, dtype=np.int32))
    assert not terminals[0]
    _, rewards, terminals, _, _ = env.step(np.zeros(1, dtype=np.int32))
    assert rewards[0] == 1.0 and terminals[0]


def test_invalid_actions_raise() -> None:
    env = fugu.make("breakout-v1", num_envs=2, seed=0)
    env.reset()
    with pytest.raises(fugu.APIUsageError, match="0, 1 or 2"):
        env.step(np.array([0, 3], dtype=np.int32))
