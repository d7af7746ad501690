"""A ParallelEnv whose second agent appears only at step 2: masked rows earn nothing.

The env reports rewards and flags for every possible agent (also the one that has not
appeared yet), as a sloppy env might; episodes end at a random step in ``[1, 4]``, so some end
before the late agent ever acts. The bridge must drop what it reports for rows that did not
act, and ``check_env`` must catch an env that passes such rows on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from fugu.core.checker import check_env
from fugu.core.env import PufferEnv
from fugu.core.errors import EnvContractError

pettingzoo = pytest.importorskip("pettingzoo")
from fugu.bridges.pettingzoo import PettingZooPufferEnv  # noqa: E402


class LateJoiner(pettingzoo.ParallelEnv):  # type: ignore[misc]
    metadata = {"name": "late_joiner"}  # noqa: RUF012

    def __init__(self) -> None:
        self.possible_agents = ["early", "late"]
        self.agents: list[str] = []
        self._rng = np.random.default_rng(0)
        self._t = 0
        self._length = 1

    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-10.0, 10.0, (2,), np.float32)

    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(2)

    def _obs(self) -> dict[str, np.ndarray]:
        return {a: np.array([self._t, a == "late"], np.float32) for a in self.agents}

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self._length = int(self._rng.integers(1, 5))
        self.agents = ["early"]
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, ...]:
        self._t += 1
        if self._t == 2:
            self.agents = ["early", "late"]
        done = self._t >= self._length
        everyone = self.possible_agents  # sloppy: reports agents that never acted
        rewards = {a: 1.0 for a in everyone}
        terminations = {a: done for a in everyone}
        truncations = {a: False for a in everyone}
        obs = self._obs()
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, {a: {} for a in everyone}


def test_masked_rows_carry_no_reward_and_no_flags() -> None:
    env = PettingZooPufferEnv(LateJoiner())
    env.reset(seed=0)
    acted = env.masks.copy()
    early_episodes = 0
    for _ in range(200):
        _, rewards, terminals, truncations, _ = env.step(np.zeros(2, np.int32))
        idle = ~acted
        assert (rewards[idle] == 0).all() and not terminals[idle].any()
        assert not truncations[idle].any()
        early_episodes += int(terminals[0] and not acted[1])
        acted = env.masks.copy()
    assert early_episodes > 0  # some episodes ended before the late agent acted


def test_bridge_passes_check_env() -> None:
    check_env(lambda: PettingZooPufferEnv(LateJoiner()), num_steps=100)


class _Leaky(PufferEnv):
    """The bridge's old behaviour: rewards and flags copied onto rows that did not act."""

    def __init__(self) -> None:
        self.inner = PettingZooPufferEnv(LateJoiner())
        inner = self.inner
        super().__init__(inner.single_observation_space, inner.single_action_space, 2)

    def reset(self, seed: Any = None) -> tuple[np.ndarray, list]:
        self.inner.reset(seed)
        self._sync()
        return self.observations, []

    def _sync(self) -> None:
        for name in ("observations", "masks", "final_observations"):
            getattr(self, name)[...] = getattr(self.inner, name)

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        acted = self.masks.copy()
        _, rewards, terminals, truncations, infos = self.inner.step(actions)
        self.rewards[...] = rewards
        self.terminals[...] = terminals
        self.truncations[...] = truncations
        done = terminals.any()
        self.rewards[~acted] = 1.0
        self.terminals[~acted] = done
        self._sync()
        return self.observations, self.rewards, self.terminals, self.truncations, infos


def test_check_env_catches_rewards_on_masked_rows() -> None:
    with pytest.raises(EnvContractError, match="masked rows must carry zero reward"):
        check_env(_Leaky(), num_steps=100)
