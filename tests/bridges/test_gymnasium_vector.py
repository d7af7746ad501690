"""fugu vec env -> gymnasium.vector.VectorEnv: spaces, same-step autoreset, infos, wrappers."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers.vector import DictInfoToList, RecordEpisodeStatistics

from fugu.bridges.gymnasium_vector import GymnasiumVectorEnv, to_gymnasium_vector
from fugu.core import APIUsageError


def test_spaces_and_metadata(chain_cls):
    envs = to_gymnasium_vector(chain_cls(5))
    assert isinstance(envs, gymnasium.vector.VectorEnv)
    assert envs.num_envs == 5
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert envs.single_observation_space == spaces.Box(0.0, 1.0, (2,), np.float32)
    assert envs.single_action_space == spaces.Discrete(2)
    assert envs.observation_space == batch_space(envs.single_observation_space, 5)
    assert envs.action_space == spaces.MultiDiscrete([2] * 5)
    assert envs.render_mode is None and envs.metadata["render_modes"] == []
    assert "num_envs=5" in repr(envs)


def test_matches_sync_vector_env_same_step(chain_cls, chain_gym_cls):
    """Every output equals Gymnasium's own SyncVectorEnv in SAME_STEP mode on the same MDP."""
    n = 6
    ours = GymnasiumVectorEnv(chain_cls(n))
    ref = SyncVectorEnv([chain_gym_cls] * n, autoreset_mode=AutoresetMode.SAME_STEP)
    obs, infos = ours.reset(seed=3)
    ref_obs, ref_infos = ref.reset(seed=3)
    np.testing.assert_array_equal(obs, ref_obs)
    assert infos == ref_infos == {}
    rng = np.random.default_rng(0)
    ended_rows = 0
    for _ in range(60):
        actions = (rng.random(n) < 0.7).astype(np.int64)
        obs, rew, term, trunc, infos = ours.step(actions)
        ref_obs, ref_rew, ref_term, ref_trunc, ref_infos = ref.step(actions)
        np.testing.assert_array_equal(obs, ref_obs)
        np.testing.assert_array_equal(rew, ref_rew)
        np.testing.assert_array_equal(term, ref_term)
        np.testing.assert_array_equal(trunc, ref_trunc)
        assert ("final_obs" in infos) == ("final_obs" in ref_infos)
        if "final_obs" not in ref_infos:
            continue
        ended_rows += int(ref_infos["_final_obs"].sum())
        for key in ("_final_obs", "_final_info"):
            np.testing.assert_array_equal(infos[key], ref_infos[key])
        for row in range(n):
            if ref_infos["_final_obs"][row]:
                np.testing.assert_array_equal(infos["final_obs"][row], ref_infos["final_obs"][row])
            else:
                assert infos["final_obs"][row] is None is ref_infos["final_obs"][row]
        assert infos["final_obs"].dtype == object
    assert ended_rows > 10  # both terminations and truncations were exercised
    ours.close()
    ref.close()


def test_known_terminal_and_truncation_values(chain_cls):
    envs = GymnasiumVectorEnv(chain_cls(2))
    envs.reset()
    right_left = np.array([1, 0])
    for _ in range(3):
        _, rew, term, trunc, infos = envs.step(right_left)
        assert infos == {} and rew.tolist() == [0.0, 0.0]
    obs, rew, term, trunc, infos = envs.step(right_left)  # row 0 reaches the goal (step 4)
    assert rew.tolist() == [1.0, 0.0] and term.tolist() == [True, False]
    assert not trunc.any()
    assert infos["_final_obs"].tolist() == [True, False]
    np.testing.assert_array_equal(infos["final_obs"][0], [1.0, 0.5])
    assert infos["final_obs"][1] is None
    np.testing.assert_array_equal(obs[0], [0.0, 0.0])  # same-step autoreset
    final_info = infos["final_info"]
    assert infos["_final_info"].tolist() == [True, False]
    assert final_info["episode_return"][0] == 1.0 and final_info["episode_length"][0] == 4
    assert final_info["_episode_return"].tolist() == [True, False]
    for _ in range(3):
        envs.step(np.array([0, 0]))
    obs, rew, term, trunc, infos = envs.step(np.array([0, 0]))  # row 1 runs out of time (step 8)
    assert trunc.tolist() == [False, True] and not term.any()
    np.testing.assert_array_equal(infos["final_obs"][1], [0.0, 1.0])
    assert infos["final_info"]["episode_return"][1] == 0.0
    assert infos["final_info"]["episode_length"][1] == 8
    np.testing.assert_array_equal(obs[1], [0.0, 0.0])


def test_record_episode_statistics_and_dict_info_to_list(chain_cls):
    envs = RecordEpisodeStatistics(GymnasiumVectorEnv(chain_cls(3)))
    listed = DictInfoToList(GymnasiumVectorEnv(chain_cls(3)))
    envs.reset(seed=0)
    listed.reset(seed=0)
    rng = np.random.default_rng(1)
    finished = 0
    for _ in range(40):
        actions = rng.integers(0, 2, 3)
        *_, infos = envs.step(actions)
        *_, list_infos = listed.step(actions)
        if "episode" not in infos:
            assert all("final_obs" not in info for info in list_infos)
            continue
        for row in np.flatnonzero(infos["_episode"]):
            finished += 1
            ours = infos["final_info"]
            assert ours["episode_return"][row] == infos["episode"]["r"][row]
            assert ours["episode_length"][row] == infos["episode"]["l"][row]
            assert list_infos[row]["final_info"]["episode_length"] == infos["episode"]["l"][row]
            assert list_infos[row]["final_obs"].shape == (2,)
    assert finished > 5


def test_copy_flag(chain_cls):
    env = chain_cls(2)
    copied = GymnasiumVectorEnv(env)
    obs, _ = copied.reset()
    assert not np.shares_memory(obs, env.observations)
    view = GymnasiumVectorEnv(chain_cls(2), copy=False)
    obs, _ = view.reset()
    obs2, *_ = view.step(np.array([1, 1]))
    assert obs is obs2 or np.shares_memory(obs, obs2)


def test_seeds_reach_the_env(chain_cls):
    env = chain_cls(3)
    envs = GymnasiumVectorEnv(env)
    obs, _ = envs.reset(seed=5)
    assert (obs[:, 0] * 4).tolist() == [1, 0, 1]
    assert envs.np_random_seed == 5
    envs.reset(seed=[2, 3, 4])  # consecutive: collapses to seed=2
    envs.reset(seed=[1, 1, 0])
    envs.reset(seed=[None, None, None])
    assert env.reset_seeds == [5, 2, [1, 1, 0], None]
    with pytest.raises(APIUsageError, match="mixing ints and None"):
        envs.reset(seed=[1, None, 2])
    with pytest.raises(APIUsageError, match="one seed per row"):
        envs.reset(seed=[1, 2])


def test_dead_rows_are_flagged_and_report_no_episodes(chain_cls):
    envs = GymnasiumVectorEnv(chain_cls(3, dead=[1]))
    obs, infos = envs.reset()
    assert infos["mask"].tolist() == [True, False, True] and infos["_mask"].all()
    for _ in range(3):
        envs.step(np.array([1, 1, 1]))
    obs, rew, term, _, infos = envs.step(np.array([1, 1, 1]))
    assert term.tolist() == [True, False, True] and rew.tolist() == [1.0, 0.0, 1.0]
    assert obs[1].tolist() == [0.0, 0.0]
    assert infos["mask"].tolist() == [True, False, True]
    assert infos["final_info"]["_episode_return"].tolist() == [True, False, True]
    assert infos["final_info"]["episode_length"].tolist() == [4, 0, 4]
    # all live: no mask key at all
    _, infos = GymnasiumVectorEnv(chain_cls(2)).reset()
    assert "mask" not in infos


def test_usage_errors(chain_cls, chain_gym_cls):
    envs = GymnasiumVectorEnv(chain_cls(2))
    with pytest.raises(APIUsageError, match="before reset"):
        envs.step(np.array([0, 0]))
    with pytest.raises(APIUsageError, match="no reset options"):
        envs.reset(options={"reset_mask": np.array([True, False])})
    envs.reset(options={})
    with pytest.raises(APIUsageError, match="one row per env"):
        envs.step(np.array([0, 0, 0]))
    with pytest.raises(APIUsageError, match="expected a fugu VecEnv"):
        GymnasiumVectorEnv(chain_gym_cls())


def test_render_and_close(chain_cls):
    env = chain_cls(2, render_mode="rgb_array")
    envs = GymnasiumVectorEnv(env)
    assert envs.metadata["render_modes"] == ["rgb_array"]
    envs.reset()
    envs.step(np.array([1, 0]))
    frames = envs.render()
    assert len(frames) == 2 and frames[0][0, 1].tolist() == [255, 255, 255]
    envs.close()
    envs.close()
    assert env.closed and envs.closed


def test_render_needs_a_render_method(chain_cls):
    class NoRender:
        def __init__(self, env):
            self._env = env

        def __getattr__(self, name):
            if name == "render":
                raise AttributeError(name)
            return getattr(self._env, name)

    env = chain_cls(1)
    proxy = NoRender(env)
    for attr in ("num_envs", "agents_per_batch"):
        setattr(proxy, attr, getattr(env, attr))
    envs = GymnasiumVectorEnv(proxy)  # type: ignore[arg-type]
    with pytest.raises(APIUsageError, match="no render"):
        envs.render()


def test_gymnasium_cartpole_through_fugu_matches_gymnasium():
    """End to end: Gymnasium's CartPole emulated and vectorized by fugu, bridged back, equals
    Gymnasium's own SAME_STEP SyncVectorEnv step for step."""
    import fugu.vector

    n = 4
    ours = GymnasiumVectorEnv(fugu.vector.make("CartPole-v1", num_envs=n))
    ref = SyncVectorEnv(
        [lambda: gymnasium.make("CartPole-v1")] * n, autoreset_mode=AutoresetMode.SAME_STEP
    )
    np.testing.assert_array_equal(ours.reset(seed=1)[0], ref.reset(seed=1)[0])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(200):
        actions = rng.integers(0, 2, n)
        obs, rew, term, trunc, infos = ours.step(actions)
        ref_obs, ref_rew, ref_term, ref_trunc, ref_infos = ref.step(actions)
        np.testing.assert_array_equal(obs, ref_obs)
        np.testing.assert_array_equal(rew, ref_rew)
        np.testing.assert_array_equal(term, ref_term)
        np.testing.assert_array_equal(trunc, ref_trunc)
        if "_final_obs" in ref_infos:
            np.testing.assert_array_equal(infos["_final_obs"], ref_infos["_final_obs"])
            for row in np.flatnonzero(ref_infos["_final_obs"]):
                ended += 1
                np.testing.assert_array_equal(infos["final_obs"][row], ref_infos["final_obs"][row])
    assert ended > 10
    ours.close()
    ref.close()


def test_native_cartpole_bridges():
    import fugu

    envs = GymnasiumVectorEnv(fugu.make("cartpole-v1", num_envs=8))
    assert envs.num_envs == 8 and envs.single_observation_space.shape == (4,)
    envs.reset(seed=0)
    lengths = []
    for _ in range(200):
        *_, infos = envs.step(envs.action_space.sample())
        if "final_info" in infos:
            lengths += infos["final_info"]["episode_length"][infos["_final_info"]].tolist()
    assert len(lengths) > 20 and 8 <= np.mean(lengths) <= 60  # a random policy's episodes
    envs.close()


def test_pettingzoo_agents_that_leave_become_masked_rows():
    """End to end with fugu's PettingZoo emulation: agent "b" terminates at step 2, "a" is
    truncated at step 4; b's row is then masked until the env autoresets."""
    from pettingzoo import ParallelEnv

    from fugu.bridges.pettingzoo import PettingZooPufferEnv

    class TwoWalkers(ParallelEnv):
        metadata = {"name": "two_walkers"}  # noqa: RUF012
        possible_agents = ["a", "b"]  # noqa: RUF012

        def observation_space(self, agent):
            return spaces.Box(0.0, 10.0, (1,), np.float32)

        def action_space(self, agent):
            return spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            self.agents = list(self.possible_agents)
            self.t = 0
            return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

        def step(self, actions):
            self.t += 1
            obs = {a: np.full(1, self.t, np.float32) for a in self.agents}
            rewards = {a: 1.0 for a in self.agents}
            terms = {a: a == "b" and self.t == 2 for a in self.agents}
            truncs = {a: a == "a" and self.t == 4 for a in self.agents}
            infos = {a: {} for a in self.agents}
            self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
            return obs, rewards, terms, truncs, infos

    envs = GymnasiumVectorEnv(PettingZooPufferEnv(TwoWalkers()))
    assert envs.num_envs == 2
    _, infos = envs.reset(seed=0)
    assert "mask" not in infos
    steps = [envs.step(np.array([0, 0])) for _ in range(4)]
    _, rew, term, trunc, infos = steps[1]  # step 2: b terminates, masked from this step on
    assert term.tolist() == [False, True] and infos["mask"].tolist() == [True, False]
    assert rew.tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(infos["final_obs"][1], [2.0])
    assert infos["final_info"]["episode_return"][1] == 2.0
    assert infos["final_info"]["episode_length"][1] == 2
    _, rew, term, trunc, infos = steps[2]  # step 3: b is gone
    assert infos["mask"].tolist() == [True, False] and not (term | trunc).any()
    assert rew.tolist() == [1.0, 0.0]
    _, _, term, trunc, infos = steps[3]  # step 4: a truncated, the env autoresets
    assert trunc.tolist() == [True, False]
    assert infos["_final_obs"].tolist() == [True, False]
    assert infos["final_info"]["episode_length"][0] == 4
    assert infos["final_info"]["episode_return"][0] == 4.0
    assert "mask" not in infos  # both agents are back
