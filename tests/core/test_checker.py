"""check_env accepts contract-abiding envs and names each kind of violation."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

import fugu
from fugu.core import EnvBuffers, EnvContractError, PufferEnv, VecBatch
from fugu.core.checker import check_env
from fugu.core.emulation import GymnasiumPufferEnv


class Walk(PufferEnv):
    """Rows walk on a line; episodes end at |x| >= 3 (terminal) or after 6 steps (truncated)."""

    def __init__(self, num_agents: int = 3, buffers: EnvBuffers | None = None) -> None:
        super().__init__(
            spaces.Box(-10, 10, (2,), np.float32), spaces.Discrete(3), num_agents, buffers
        )
        self.x = np.zeros(num_agents)
        self.t = np.zeros(num_agents, np.int64)
        self.rng = np.random.default_rng(0)

    def _observe(self, out: np.ndarray) -> None:
        out[:, 0] = self.x
        out[:, 1] = self.t

    def reset(self, seed=None):
        self.rng = np.random.default_rng(seed)
        self.x[:] = self.rng.integers(-1, 2, self.num_agents)
        self.t[:] = 0
        self._observe(self.observations)
        return self.observations, []

    def step(self, actions):
        actions = self._write_actions(actions)
        self.x += actions - 1
        self.t += 1
        self.terminals[:] = np.abs(self.x) >= 3
        self.truncations[:] = ~self.terminals & (self.t >= 6)
        self.rewards[:] = self.terminals
        done = self.terminals | self.truncations
        self._observe(self.final_observations)
        self.x[done] = self.rng.integers(-1, 2, int(done.sum()))
        self.t[done] = 0
        self._observe(self.observations)
        infos = [{"episode_return": 1.0, "num_episodes": int(done.sum())}] if done.any() else []
        return self.observations, self.rewards, self.terminals, self.truncations, infos


def test_good_envs_pass():
    check_env(Walk(), num_steps=60)
    check_env(Walk, num_steps=60)
    check_env(lambda: GymnasiumPufferEnv.from_id("CartPole-v1"), num_steps=100)
    check_env(lambda: GymnasiumPufferEnv.from_id("Pendulum-v1"), num_steps=30)
    assert fugu.check_env is check_env


def _fails(env_or_factory, match: str) -> None:
    with pytest.raises(EnvContractError, match=match):
        check_env(env_or_factory, num_steps=60)


def test_wrong_spaces():
    env = Walk()
    env.single_observation_space = spaces.Discrete(3)
    _fails(env, "single_observation_space must be a gymnasium Box")
    env = Walk()
    env.single_action_space = spaces.MultiBinary(2)
    _fails(env, "single_action_space must be Discrete, MultiDiscrete or Box")
    env = Walk()
    env.num_agents = 0
    _fails(env, "num_agents must be an int >= 1")
    env = Walk()
    del env.masks
    _fails(env, "no attribute 'masks'")


@pytest.mark.parametrize(
    ("buffer", "array", "match"),
    [
        ("rewards", np.zeros(3, np.float64), "rewards must have dtype float32"),
        ("terminals", np.zeros(3, np.int8), "terminals must have dtype bool"),
        ("masks", np.ones(3, np.float32), "masks must have dtype bool"),
        ("actions", np.zeros(3, np.int64), "actions must have dtype int32"),
        ("observations", np.zeros((3, 3), np.float32), r"observations must have shape \(3, 2\)"),
        ("final_observations", np.zeros((3, 2), np.float64), "final_observations must have"),
        ("truncations", [False] * 3, "truncations must be a numpy array"),
    ],
)
def test_wrong_buffers(buffer, array, match):
    env = Walk()
    setattr(env, buffer, array)
    _fails(env, match)


class CopyObs(Walk):
    def reset(self, seed=None):
        return super().reset(seed)[0].copy(), []


class CopyRewards(Walk):
    def step(self, actions):
        obs, rewards, *rest = super().step(actions)
        return (obs, rewards.copy(), *rest)


class Unseeded(Walk):
    def reset(self, seed=None):
        return super().reset(None)


class NoFinal(Walk):
    def step(self, actions):
        final = self.final_observations.copy()
        out = super().step(actions)
        self.final_observations[...] = final
        return out


class NoAutoreset(Walk):
    def step(self, actions):
        out = super().step(actions)
        self.observations[...] = self.final_observations
        return out


class InfosDict(Walk):
    def step(self, actions):
        *rest, _ = super().step(actions)
        return (*rest, {"a": 1})


class InfosPerRow(Walk):
    def __init__(self) -> None:
        super().__init__(num_agents=20)

    def step(self, actions):
        *rest, _ = super().step(actions)
        return (*rest, [{"r": 0.0} for _ in range(self.num_agents)])


class OutOfSpace(Walk):
    def step(self, actions):
        out = super().step(actions)
        self.observations[0, 1] = 11.0
        return out


class NanObs(Walk):
    def reset(self, seed=None):
        out = super().reset(seed)
        self.observations[1, 0] = np.nan
        return out


class Raises(Walk):
    def step(self, actions):
        raise ValueError("boom")


class CloseTwice(Walk):
    def close(self):
        if self.closed:
            raise RuntimeError("already closed")
        super().close()


class ResetTriple(Walk):
    def reset(self, seed=None):
        return (*super().reset(seed), None)


class StepFour(Walk):
    def step(self, actions):
        return super().step(actions)[:4]


class IntKeys(Walk):
    def step(self, actions):
        *rest, _ = super().step(actions)
        return (*rest, [{1: 0.0}])


class CopyRecv(Walk):
    def recv(self):
        batch = super().recv()
        return VecBatch(batch.observations.copy(), *batch[1:])


class BadEnvIds(Walk):
    def recv(self):
        batch = super().recv()
        return batch._replace(env_ids=np.arange(1, 4))


class NoRecv(Walk):
    recv = None


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (CopyObs, r"reset\(\) must return observations as a view of env.observations"),
        (CopyRewards, r"step\(\) must return rewards as a view of env.rewards"),
        (Unseeded, "not deterministic: .* observations differ"),
        (NoFinal, "without writing final_observations"),
        (NoAutoreset, "does not seem to autoreset"),
        (InfosDict, "infos as a list of dicts"),
        (InfosPerRow, "aggregate episode statistics"),
        (OutOfSpace, r"outside single_observation_space: row 0, element \(1,\) = 11"),
        (NanObs, "NaN"),
        (Raises, "raised ValueError while being checked: boom"),
        (CloseTwice, "close.. must be idempotent"),
        (ResetTriple, r"must return \(observations, infos\)"),
        (StepFour, r"must return \(observations, rewards"),
        (IntKeys, "info keys must be strings"),
        (CopyRecv, "field observations must be a view"),
        (BadEnvIds, "env_ids .* out of range"),
        (NoRecv, "no recv"),
    ],
)
def test_violations_are_named(cls, match):
    _fails(cls, match)


def test_determinism_across_instances_only_with_a_factory():
    counter = iter(range(100))

    class Instance(Walk):
        def __init__(self) -> None:
            super().__init__()
            self.offset = next(counter)

        def reset(self, seed=None):
            return super().reset(seed + self.offset)

    _fails(Instance, "differ between two instances")
    check_env(Instance(), num_steps=30)  # one instance reset twice is deterministic


def test_declared_extra_fields_are_checked() -> None:
    from fugu.core.schema import COSTS
    from fugu.envs.hazard_nav import HazardNav

    check_env(lambda: HazardNav(num_envs=2), num_steps=20)
    env = HazardNav(num_envs=2)
    env.extras["costs"] = np.zeros(2, np.float64)  # not what COSTS declares
    with pytest.raises(EnvContractError, match="costs must have dtype float32"):
        check_env(env)
    assert env.extra_fields["costs"] == COSTS
