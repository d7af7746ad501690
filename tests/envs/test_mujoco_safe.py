"""The batched velocity tasks equal the Gymnasium-bridge ones they replace, step for step."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.bridges.safe_velocity import VELOCITY_THRESHOLDS, make_velocity_env
from fugu.envs.mujoco.safe import (
    SAFE_VELOCITY_THRESHOLDS,
    SafeHalfCheetahVelocity,
    SafeHopperVelocity,
)

pytest.importorskip("mujoco")


def test_thresholds_are_the_bridges() -> None:
    assert {
        "hopper": VELOCITY_THRESHOLDS["Hopper-v5"],
        "halfcheetah": VELOCITY_THRESHOLDS["HalfCheetah-v5"],
    } == SAFE_VELOCITY_THRESHOLDS


@pytest.mark.parametrize(
    ("cls", "gym_id", "threshold", "steps"),
    [
        (SafeHopperVelocity, "Hopper-v5", None, 400),
        (SafeHalfCheetahVelocity, "HalfCheetah-v5", 0.3, 150),
    ],
)
def test_batched_velocity_tasks_equal_the_bridge_ones(
    cls: type, gym_id: str, threshold: float | None, steps: int
) -> None:
    rows = 2
    env = cls(rows, threshold=threshold, info_interval=1)
    bridged = [make_velocity_env(gym_id, threshold) for _ in range(rows)]
    obs, _ = env.reset(seed=3)
    for i, one in enumerate(bridged):
        np.testing.assert_allclose(obs[i], one.reset(seed=3 + i)[0][0], atol=1e-6)
    rng = np.random.default_rng(0)
    total_cost, batched_costs, bridged_costs = 0.0, [], []
    for _ in range(steps):
        actions = rng.uniform(-1, 1, (rows, *env.single_action_space.shape)).astype(np.float32)
        obs, rewards, terminals, truncations, infos = env.step(actions)
        batched_costs += [info["episode_cost"] * info["num_episodes"] for info in infos]
        for i, one in enumerate(bridged):
            o, r, term, trunc, one_infos = one.step(actions[i : i + 1])
            np.testing.assert_allclose(obs[i], o[0], atol=1e-5)
            assert abs(float(rewards[i]) - float(r[0])) < 1e-5
            assert (terminals[i], truncations[i]) == (term[0], trunc[0])
            assert env.costs[i] == one.costs[0]
            total_cost += float(one.costs[0])
            bridged_costs += [info["episode_cost"] for info in one_infos if "episode_cost" in info]
    assert total_cost > 0  # the threshold is crossed: costs were compared, not only zeros
    assert sum(batched_costs) == pytest.approx(sum(bridged_costs))
    assert "costs" in env.extra_fields
    env.close()


def test_registered_ids_are_batched() -> None:
    env = fugu.make("safe-hopper-velocity-v1", num_envs=3, seed=0)
    assert isinstance(env, SafeHopperVelocity) and env.costs.shape == (3,)
    fugu.check_env(lambda: fugu.make("safe-halfcheetah-velocity-v1", num_envs=2), num_steps=40)
