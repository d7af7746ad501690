"""The native env base: seeding, threads, state round trips, autoreset, infos, batches."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError
from fugu.envs.cartpole import CartPole
from fugu.envs.native import NativeEnv
from fugu.envs.probes import ProbeMultiagent
from fugu.vector import EnvFactory


def _actions(env: NativeEnv, steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = env.single_action_space
    if env.actions.dtype == np.int32:
        return rng.integers(0, 2, (steps, *env.actions.shape)).astype(np.int32)
    low, high = float(space.low.min()), float(space.high.max())  # type: ignore[attr-defined]
    return rng.uniform(low, high, (steps, *env.actions.shape)).astype(np.float32)


def _trajectory(env: NativeEnv, actions: np.ndarray) -> list[np.ndarray]:
    out = []
    for a in actions:
        obs, rewards, terminals, truncations, _ = env.step(a)
        out += [obs.copy(), rewards.copy(), terminals.copy(), truncations.copy()]
        done = terminals | truncations  # final observations only mean something there
        out.append(env.final_observations[done].copy())
    return out


@pytest.mark.parametrize("env_id", ["cartpole-v1", "pendulum-v1", "probe-multiagent-v1"])
def test_results_do_not_depend_on_thread_count(env_id: str) -> None:
    runs = []
    for threads in (1, 3):
        env = fugu.make(env_id, num_envs=7, threads=threads, seed=11)
        env.reset()
        runs.append(_trajectory(env, _actions(env, 300)))
        env.close()
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_seed_gives_same_rows_whatever_num_envs() -> None:
    small, large = CartPole(2, seed=4), CartPole(5, seed=4)
    np.testing.assert_array_equal(small.reset()[0], large.reset()[0][:2])
    other = CartPole(2, seed=5)
    assert not np.array_equal(other.reset()[0], small.observations)
    np.testing.assert_array_equal(CartPole(2).reset(seed=4)[0], small.observations)


def test_reset_with_one_seed_per_copy() -> None:
    env = CartPole(3)
    env.reset(seed=[7, 8, 9])
    np.testing.assert_array_equal(env.observations[0], CartPole(1).reset(seed=7)[0][0])
    with pytest.raises(APIUsageError, match="one seed per copy"):
        env.reset(seed=[1, 2])


def test_reset_without_seed_continues_generators() -> None:
    env = CartPole(4, seed=0)
    first = env.reset()[0].copy()
    second = env.reset()[0].copy()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(env.reset(seed=0)[0], first)
    unseeded = CartPole(4)
    assert not np.array_equal(unseeded.reset()[0], first)


@pytest.mark.parametrize("env_id", ["cartpole-v1", "pendulum-v1", "probe-memory-v1"])
def test_get_set_state_round_trip_continues_identically(env_id: str) -> None:
    env = fugu.make(env_id, num_envs=5, seed=2, info_interval=1)
    env.reset()
    actions = _actions(env, 400, seed=1)
    _trajectory(env, actions[:150])
    saved = env.get_state()
    expected = _trajectory(env, actions[150:])
    other = fugu.make(env_id, num_envs=5, seed=99, info_interval=1)
    other.reset()
    other.set_state(saved)
    np.testing.assert_array_equal(other.observations, saved["observations"])
    for a, b in zip(expected, _trajectory(other, actions[150:])):
        np.testing.assert_array_equal(a, b)


def test_set_state_rejects_other_layouts() -> None:
    state = CartPole(3, seed=0).get_state()
    with pytest.raises(APIUsageError, match="another num_envs"):
        CartPole(4).set_state(state)
    del state["rng"]
    with pytest.raises(APIUsageError, match="missing \\['rng'\\]"):
        CartPole(3).set_state(state)


def test_autoreset_writes_final_observations() -> None:
    env = CartPole(3, seed=0)
    env.reset()
    push = np.ones(3, dtype=np.int32)
    for _ in range(1, 200):
        before = env.state["physics"].copy()
        obs, _, terminals, truncations, _ = env.step(push)
        if terminals.any():
            break
    else:
        pytest.fail("always pushing right never terminated")
    assert not truncations.any()
    done = np.flatnonzero(terminals)
    final = env.final_observations[done]
    # the ending observation is out of bounds, the new first observation is near zero
    assert (np.abs(final[:, 0]) > 2.4).any() or (np.abs(final[:, 2]) > 0.2094).any()
    assert (np.abs(obs[done]) <= 0.05).all()
    assert (env.state["episode_length"][done] == 0).all()
    assert np.abs(before[done] - final).max() < 1.0


def test_infos_are_aggregated_every_interval() -> None:
    env = fugu.make("probe-delayed-v1", num_envs=4, seed=0, info_interval=3)
    env.reset()
    zeros = np.zeros(4, dtype=np.int32)
    assert env.step(zeros)[4] == []
    assert env.step(zeros)[4] == []
    (info,) = env.step(zeros)[4]  # 3 steps: one full two-step episode per copy
    assert info == {"episode_return": 1.0, "episode_length": 2.0, "num_episodes": 4}
    assert env.flush_infos() == []


def test_multiagent_rows_and_stats() -> None:
    env = ProbeMultiagent(3, agents=4, seed=0, info_interval=1)
    obs, _ = env.reset()
    assert env.num_agents == 12 and obs.shape == (12, 4)
    np.testing.assert_array_equal(obs[4:8], np.eye(4, dtype=np.float32))
    best = np.tile(np.arange(4) % 2, 3).astype(np.int32)
    _, rewards, terminals, _, infos = env.step(best)
    assert rewards.tolist() == [1.0] * 12 and terminals.all()
    assert infos[0]["num_episodes"] == 12 and infos[0]["episode_return"] == 1.0


def test_adopts_buffers() -> None:
    env = CartPole(2, seed=0)
    buffers = EnvBuffers.allocate(env.single_observation_space, env.single_action_space, 6)
    view = buffers.rows(2, 4)
    adopted = CartPole(2, seed=0, buffers=view)
    adopted.reset()
    np.testing.assert_array_equal(buffers.observations[2:4], env.reset()[0])
    assert not buffers.observations[:2].any()


def test_render_shape() -> None:
    for env_id in fugu.registered_ids():
        if not EnvFactory(env_id).accepts("num_envs"):
            continue  # a one-row Gymnasium-built env (safe-*-velocity)
        env = fugu.make(env_id, num_envs=2, seed=0)
        if type(env).__module__.startswith("fugu.envs.mujoco"):
            continue  # needs an OpenGL context: tests/envs/test_mujoco.py renders them
        env.reset()
        frame = env.render(1)
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_constructor_errors() -> None:
    with pytest.raises(APIUsageError, match="num_envs"):
        CartPole(0)
    with pytest.raises(APIUsageError, match="threads"):
        CartPole(2, threads=0)
    with pytest.raises(APIUsageError, match="info_interval"):
        CartPole(2, info_interval=0)
    with pytest.raises(APIUsageError, match="batch_size"):
        CartPole(4, batch_size=3)
    env = CartPole(2)
    env.close()
    env.close()
    with pytest.raises(APIUsageError, match="closed"):
        env.reset()


def test_step_before_reset_is_refused_and_a_restored_state_may_step() -> None:
    env = CartPole(2, seed=0)
    with pytest.raises(APIUsageError, match=r"before reset\(\)"):
        env.step(np.zeros(2, dtype=np.int64))
    env.reset()
    state = env.get_state()
    fresh = CartPole(2, seed=1)
    fresh.set_state(state)
    fresh.step(np.zeros(2, dtype=np.int64))
    env.step(np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(fresh.observations, env.observations)
    env.close()
    with pytest.raises(APIUsageError, match="closed"):
        env.step(np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("threads", [1, 2])
def test_double_buffered_batches_match_synchronous_steps(threads: int) -> None:
    sync = CartPole(8, seed=3)
    sync.reset()
    batched = CartPole(8, seed=3, batch_size=4, threads=threads, info_interval=1)
    assert batched.agents_per_batch == 4
    batched.async_reset()
    actions = _actions(sync, 60)
    first = batched.recv()
    np.testing.assert_array_equal(first.observations, sync.observations[:4])
    assert first.env_ids.tolist() == [0, 1, 2, 3]
    batch = first
    episodes = 0
    for a in actions:
        sync.step(a)
        assert batch.env_ids[0] == 0
        batched.send(a[:4])  # steps rows 0-3 on the worker thread ...
        batch = batched.recv()  # ... while rows 4-7 (not stepped yet) come back
        assert batch.env_ids[0] == 4
        episodes += sum(info["num_episodes"] for info in batch.infos)
        batched.send(a[4:])
        batch = batched.recv()
        np.testing.assert_array_equal(batch.observations, sync.observations[:4])
        np.testing.assert_array_equal(batch.rewards, sync.rewards[:4])
        np.testing.assert_array_equal(batch.terminals, sync.terminals[:4])
        episodes += sum(info["num_episodes"] for info in batch.infos)
    np.testing.assert_array_equal(batched.get_state()["physics"], sync.state["physics"])
    batched.send(actions[0][:4])
    with pytest.raises(APIUsageError, match="send\\(\\) called twice"):
        batched.send(actions[0][:4])
    batched.recv()
    with pytest.raises(APIUsageError, match="shape"):
        batched.send(actions[0])
    assert episodes > 0
    batched.close()
