"""The velocity tasks and the Gymnasium bridge's costs field."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import pytest

import fugu
from fugu.bridges.gymnasium import from_gymnasium
from fugu.bridges.safe_velocity import VELOCITY_THRESHOLDS, VelocityCost, make_velocity_env
from fugu.core.errors import APIUsageError

pytest.importorskip("mujoco")


class _Costly(gymnasium.Env):  # type: ignore[misc]
    """Cost 0.5 on every step, episodes of 3 steps."""

    observation_space = gymnasium.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: Any = None, options: Any = None) -> Any:
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: Any) -> Any:
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= 3, False, {"cost": 0.5}


def test_bridge_fills_costs_from_info_and_reports_episode_cost() -> None:
    env = from_gymnasium(_Costly(), costs=True)
    env.reset(seed=0)
    assert env.costs.tolist() == [0.0]
    infos: list[dict[str, Any]] = []
    for _ in range(3):
        _, _, _, _, infos = env.step(np.zeros(1, np.int64))
        assert env.costs.tolist() == [0.5]
    assert infos[0]["episode_cost"] == 1.5 and "cost" not in infos[0]
    assert "costs" not in from_gymnasium(_Costly()).extras


@pytest.mark.parametrize(
    ("env_id", "gym_id"),
    [("safe-hopper-velocity-v1", "Hopper-v5"), ("safe-halfcheetah-velocity-v1", "HalfCheetah-v5")],
)
def test_velocity_cost_is_the_indicator_of_exceeding_the_threshold(
    env_id: str, gym_id: str
) -> None:
    env = fugu.make(env_id)
    reference = gymnasium.make(gym_id)
    env.reset(seed=3)
    reference.reset(seed=3)
    rng = np.random.default_rng(0)
    threshold = VELOCITY_THRESHOLDS[gym_id]
    for _ in range(60):
        action = rng.uniform(-1, 1, env.single_action_space.shape).astype(np.float32)
        env.step(action[None])
        _, _, terminated, truncated, info = reference.step(action)
        expected = float(info["x_velocity"] > threshold)
        assert env.costs[0] == expected
        if terminated or truncated:
            break
    env.close()
    reference.close()
    assert "costs" in env.extra_fields


def test_velocity_cost_wrapper_and_errors() -> None:
    env = VelocityCost(gymnasium.make("HalfCheetah-v5"), threshold=-100.0)
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[4]["cost"] == 1.0
    with pytest.raises(APIUsageError, match="threshold"):
        make_velocity_env("Walker2d-v5")
    bad = VelocityCost(gymnasium.make("CartPole-v1"), threshold=0.0)
    bad.reset(seed=0)
    with pytest.raises(APIUsageError, match="x_velocity"):
        bad.step(0)
