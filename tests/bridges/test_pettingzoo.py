"""PettingZoo ParallelEnv -> fugu env: fixed rows, masks, roles, autoreset (mpe2 + a custom env)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from fugu.bridges.pettingzoo import PettingZooPufferEnv, from_pettingzoo
from fugu.core import APIUsageError, EnvContractError
from fugu.core.checker import check_env
from fugu.ops.emulation import restore

mpe2 = pytest.importorskip("mpe2")


class Arena(ParallelEnv):
    """Agents "a" and "b" (Box obs, Discrete actions) and "c" (Dict obs, Box actions).

    "c" joins on the first step, "b" terminates on the second step (and leaves), and every
    remaining agent is truncated on step 4.
    """

    metadata = {"name": "arena_v0"}  # noqa: RUF012

    def __init__(self) -> None:
        self.possible_agents = ["a", "b", "c"]
        self.agents: list[str] = []
        self.received: list[dict] = []
        self.t = 0
        self._obs_spaces = {
            "a": spaces.Box(-100, 100, (3,), np.float32),
            "b": spaces.Box(-100, 100, (3,), np.float32),
            "c": spaces.Dict(
                {"pos": spaces.Box(-100, 100, (2,), np.float32), "id": spaces.Discrete(4)}
            ),
        }
        self._act_spaces = {
            "a": spaces.Discrete(3),
            "b": spaces.Discrete(3),
            "c": spaces.Box(-1, 1, (2,), np.float32),
        }
        self.offset = 0.0
        self.rng = np.random.default_rng(0)

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _obs(self, agent):
        if agent == "c":
            return {"pos": np.array([self.t, self.offset], np.float32), "id": self.t % 4}
        base = 10.0 if agent == "a" else 20.0
        return np.array([base, self.t, self.offset], np.float32)

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.offset = float(self.rng.integers(0, 50))
        self.t = 0
        self.agents = ["a", "b"]
        return {agent: self._obs(agent) for agent in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents)
        for agent, action in actions.items():
            assert self._act_spaces[agent].contains(action), (agent, action)
        self.received.append(actions)
        self.t += 1
        acting = list(self.agents)
        if self.t == 1:
            acting.append("c")
        rewards = {agent: float(self.t) + (agent == "a") for agent in acting}
        terms = {agent: agent == "b" and self.t == 2 for agent in acting}
        truncs = {agent: self.t >= 4 for agent in acting}
        obs = {agent: self._obs(agent) for agent in acting}
        self.agents = [a for a in acting if not (terms[a] or truncs[a])]
        return obs, rewards, terms, truncs, {agent: {} for agent in acting}


def test_custom_env_masks_roles_and_autoreset():
    env = PettingZooPufferEnv(Arena())
    assert env.roles.tolist() == [0, 0, 1] and env.num_roles == 2
    assert env.observations.dtype == np.uint8  # role 1 mixes float32 and int64 leaves
    assert isinstance(env.single_action_space, spaces.Box)  # Discrete and Box roles: mixed row
    layouts = env.role_observation_layouts
    obs, infos = env.reset(seed=3)
    assert infos == [] and env.masks.tolist() == [True, True, False]
    roles = layouts[0].unflatten(obs)["role"]
    assert roles.tolist() == [0, 0, 1]  # the role id is a leaf of every row, absent rows too
    a = layouts[0].unflatten(obs[0])["observation"]
    assert a.tolist()[0] == 10.0
    assert not layouts[1].unflatten(obs[2])["observation"]["pos"].any()

    actions = np.array([[2.0, 0.0], [1.0, 0.0], [0.5, -0.5]], np.float32)
    obs, rewards, terms, truncs, infos = env.step(actions)  # step 1: "c" joins
    assert env.env.received[-1] == {"a": 2, "b": 1}
    assert env.masks.tolist() == [True, True, True]
    # "c" did not act on this step (its row was masked): what the env reports for it is dropped
    assert rewards.tolist() == [2.0, 1.0, 0.0]
    c = layouts[1].unflatten(obs[2])["observation"]
    assert c["pos"][0] == 1.0 and int(c["id"]) == 1

    obs, rewards, terms, truncs, infos = env.step(actions)  # step 2: "b" terminates
    assert env.env.received[-1]["c"].tolist() == [0.5, -0.5]
    # the death step: flag and reward reported, masks already false ("b" will not act again)
    assert terms.tolist() == [False, True, False] and env.masks.tolist() == [True, False, True]
    assert rewards[1] == 2.0
    final_b = layouts[0].unflatten(env.final_observations[1])
    assert final_b["observation"].tolist()[:2] == [20.0, 2.0]
    b = layouts[0].unflatten(obs[1])
    assert int(b["role"]) == 0 and not b["observation"].any()  # a masked row reads zero

    obs, rewards, terms, truncs, infos = env.step(actions)  # step 3: "b" is gone
    assert set(env.env.received[-1]) == {"a", "c"}
    assert env.masks.tolist() == [True, False, True]
    assert rewards[1] == 0.0 and not terms[1] and not truncs[1]
    b = layouts[0].unflatten(obs[1])
    assert int(b["role"]) == 0 and not b["observation"].any()

    offset_before = env.env.offset
    obs, rewards, terms, truncs, infos = env.step(actions)  # step 4: truncation -> autoreset
    assert truncs.tolist() == [True, False, True]
    # rows "a" and "b" autoreset into the new episode on this step: live again at once
    final_a = layouts[0].unflatten(env.final_observations[0])["observation"]
    assert final_a.tolist() == [10.0, 4.0, offset_before]
    final_c = layouts[1].unflatten(env.final_observations[2])["observation"]
    assert final_c["pos"].tolist() == [4.0, offset_before]
    # the new episode: "a" and "b" are back at t=0, "c" is absent again
    assert env.masks.tolist() == [True, True, False]
    assert layouts[0].unflatten(obs[0])["observation"][1] == 0.0
    returns = [2 + 3 + 4 + 5, 1 + 2, 2 + 3 + 4]
    assert infos == [
        {"episode_return": pytest.approx(np.mean(returns)), "episode_length": 4, "num_episodes": 1}
    ]
    env.close()
    env.close()


def test_custom_env_passes_the_checker():
    check_env(lambda: PettingZooPufferEnv(Arena()), num_steps=30)


def test_heterogeneous_discrete_roles_share_one_discrete_row():
    class TwoRoles(Arena):
        def __init__(self) -> None:
            super().__init__()
            self._act_spaces["c"] = spaces.Discrete(5, start=1)

    env = PettingZooPufferEnv(TwoRoles())
    assert env.single_action_space == spaces.Discrete(5)
    env.reset(seed=0)
    env.step(np.array([4, 4, 0], np.int32))
    assert env.env.received[-1] == {"a": 2, "b": 2}  # clipped to the role's 3 choices
    env.step(np.array([0, 0, 4], np.int32))
    assert env.env.received[-1]["c"] == 5  # start=1 is added back

    class MultiRoles(Arena):
        def __init__(self) -> None:
            super().__init__()
            self._act_spaces["c"] = spaces.MultiDiscrete([2, 4])

    env = PettingZooPufferEnv(MultiRoles())
    assert env.single_action_space == spaces.MultiDiscrete([3, 4])
    env.reset(seed=0)
    env.step(np.array([[1, 3], [2, 0], [1, 3]], np.int32))
    env.step(np.array([[1, 3], [2, 0], [5, 3]], np.int32))
    assert env.env.received[-1]["c"].tolist() == [1, 3]

    class BoxRoles(Arena):
        def __init__(self) -> None:
            super().__init__()
            self._act_spaces["a"] = self._act_spaces["b"] = spaces.Box(-2, 2, (1,), np.float32)

    env = PettingZooPufferEnv(BoxRoles())
    assert env.single_action_space == spaces.Box(
        np.array([-2, -1], np.float32), np.array([2, 1], np.float32)
    )
    env.reset(seed=0)
    env.step(np.array([[1.5, 0.0], [-1.5, 0.0], [0.5, 0.25]], np.float32))
    assert env.env.received[-1]["a"].tolist() == [1.5]


def test_mpe_simple_spread_matches_the_raw_env():
    from mpe2 import simple_spread_v3

    env = from_pettingzoo(lambda: simple_spread_v3.parallel_env(max_cycles=6))
    raw = simple_spread_v3.parallel_env(max_cycles=6)
    assert env.num_roles == 1 and env.observation_layout.is_passthrough
    obs, _ = env.reset(seed=4)
    raw_obs, _ = raw.reset(seed=4)
    for i, agent in enumerate(raw.possible_agents):
        np.testing.assert_array_equal(obs[i], raw_obs[agent])
    rng = np.random.default_rng(0)
    for _t in range(14):
        actions = rng.integers(0, 5, env.num_agents).astype(np.int32)
        obs, rewards, _terms, truncs, infos = env.step(actions)
        raw_obs, raw_rewards, _, raw_truncs, _ = raw.step(
            {agent: int(actions[i]) for i, agent in enumerate(raw.possible_agents)}
        )
        for i, agent in enumerate(raw.possible_agents):
            assert rewards[i] == np.float32(raw_rewards[agent])
            assert truncs[i] == raw_truncs[agent]
        if truncs.all():
            assert infos[0]["episode_length"] == 6 and infos[0]["num_episodes"] == 1
            for i, agent in enumerate(raw.possible_agents):
                np.testing.assert_array_equal(env.final_observations[i], raw_obs[agent])
            raw_obs, _ = raw.reset()
        else:
            assert infos == []
        for i, agent in enumerate(raw.possible_agents):
            np.testing.assert_array_equal(obs[i], raw_obs[agent])
    env.close()
    check_env(lambda: from_pettingzoo(simple_spread_v3.parallel_env(max_cycles=5)), num_steps=20)


def test_mpe_simple_tag_roles_restore_on_the_policy_side():
    from mpe2 import simple_tag_v3

    env = PettingZooPufferEnv(simple_tag_v3.parallel_env(max_cycles=5))
    assert env.roles.tolist() == [0, 0, 0, 1]
    assert env.observations.dtype == np.float32 and env.observations.shape == (4, 17)
    obs, _ = env.reset(seed=1)
    raw = simple_tag_v3.parallel_env(max_cycles=5)
    raw_obs, _ = raw.reset(seed=1)
    batch = torch.from_numpy(obs)
    role_ids = restore(batch, env.role_observation_layouts[0])["role"]
    assert role_ids.tolist() == [0.0, 0.0, 0.0, 1.0]
    for role, layout in enumerate(env.role_observation_layouts):
        restored = restore(batch, layout)["observation"]
        for i in np.flatnonzero(env.roles == role):
            np.testing.assert_array_equal(restored[i].numpy(), raw_obs[env.possible_agents[i]])
    check_env(lambda: PettingZooPufferEnv(simple_tag_v3.parallel_env(max_cycles=5)), num_steps=20)
    env.close()


def test_errors():
    with pytest.raises(APIUsageError, match="ParallelEnv"):
        PettingZooPufferEnv(object())

    class Empty(Arena):
        def __init__(self) -> None:
            super().__init__()
            self.possible_agents = []

    with pytest.raises(EnvContractError, match="no possible_agents"):
        PettingZooPufferEnv(Empty())


def test_autoreset_when_every_agent_is_flagged_even_if_the_env_keeps_them():
    class KeepsAgents(Arena):
        def step(self, actions):
            out = super().step(actions)
            self.agents = [a for a in out[0] if not out[2][a]]  # truncated agents stay listed
            return out

    env = PettingZooPufferEnv(KeepsAgents())
    env.reset(seed=0)
    actions = np.zeros((3, 2), np.float32)
    for _ in range(3):
        assert env.step(actions)[4] == []
    *_, truncs, infos = env.step(actions)
    assert truncs.tolist() == [True, False, True] and infos[0]["episode_length"] == 4
    assert env.env.t == 0 and env.masks.tolist() == [True, True, False]


class Classic(ParallelEnv):
    """Two agents observing ``Dict(observation, action_mask)`` (PettingZoo classic style) with
    a global ``state()``; "p1" terminates on step 2, "p0" on step 3 (the env then resets)."""

    metadata = {"name": "classic_v0"}  # noqa: RUF012

    def __init__(self) -> None:
        self.possible_agents = ["p0", "p1"]
        self.agents: list[str] = []
        self.t = 0
        self.state_space = spaces.Box(-10, 10, (3,), np.float32)
        self._obs_space = spaces.Dict(
            {
                "observation": spaces.Box(-10, 10, (2,), np.float32),
                "action_mask": spaces.Box(0, 1, (4,), np.int8),
            }
        )

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return spaces.Discrete(4)

    def _obs(self, agent):
        k = self.possible_agents.index(agent)
        mask = np.zeros(4, np.int8)
        mask[(self.t + k) % 4] = 1
        return {"observation": np.array([k, self.t], np.float32), "action_mask": mask}

    def state(self):
        return np.array([self.t, len(self.agents), 7.0], np.float32)

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        acting = list(self.agents)
        terms = {a: (a == "p1" and self.t == 2) or (a == "p0" and self.t == 3) for a in acting}
        rewards = {a: 1.0 for a in acting}
        obs = {a: self._obs(a) for a in acting}
        self.agents = [a for a in acting if not terms[a]]
        return obs, rewards, terms, dict.fromkeys(acting, False), {a: {} for a in acting}


def _one_hot(k: int) -> list[bool]:
    return [i == k % 4 for i in range(4)]


def test_classic_action_masks_global_state_and_roles_are_declared_fields():
    from fugu.core.schema import ROLES, action_masks_field, global_state_field

    env = PettingZooPufferEnv(Classic())
    assert env.extra_fields == {
        "roles": ROLES,
        "action_masks": action_masks_field(4),
        "global_state": global_state_field((3,)),
    }
    assert env.roles is env.extras["roles"] and env.roles.tolist() == [0, 0]
    env.reset(seed=0)
    assert env.action_masks.tolist() == [_one_hot(0), _one_hot(1)]
    assert env.global_state.tolist() == [[0, 2, 7], [0, 2, 7]]
    actions = np.zeros(2, np.int32)
    env.step(actions)
    assert env.action_masks.tolist() == [_one_hot(1), _one_hot(2)]
    assert env.global_state.tolist() == [[1, 2, 7]] * 2
    _, rewards, terms, _, _ = env.step(actions)  # "p1" dies
    assert terms.tolist() == [False, True] and rewards.tolist() == [1.0, 1.0]
    assert env.masks.tolist() == [True, False]
    assert env.action_masks[1].all()  # an absent row allows everything (it is masked anyway)
    assert env.global_state.tolist() == [[2, 1, 7]] * 2
    _, rewards, terms, _, infos = env.step(actions)  # "p0" dies: the whole env resets
    assert terms.tolist() == [True, False] and rewards.tolist() == [1.0, 0.0]
    assert env.masks.tolist() == [True, True] and infos[0]["num_episodes"] == 1
    assert env.action_masks.tolist() == [_one_hot(0), _one_hot(1)]
    assert env.global_state.tolist() == [[0, 2, 7]] * 2
    check_env(lambda: PettingZooPufferEnv(Classic()), num_steps=20)


def test_declared_fields_cross_a_vectorizer():
    from fugu.vector import Serial

    env = Serial(lambda buffers=None: PettingZooPufferEnv(Classic(), buffers=buffers), 3)
    env.reset(seed=0)
    assert env.extras["roles"].tolist() == [0] * 6
    assert env.extras["action_masks"].tolist() == [_one_hot(0), _one_hot(1)] * 3
    env.step(np.zeros(6, np.int32))
    env.step(np.zeros(6, np.int32))
    assert env.masks.tolist() == [True, False] * 3
    assert env.extras["global_state"][:, 0].tolist() == [2.0] * 6
    env.close()
