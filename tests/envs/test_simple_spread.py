"""simple-spread-v1 against mpe2's simple_spread_v3: same states, actions -> same steps."""

from __future__ import annotations

import numpy as np
import pytest

from fugu.core.checker import check_env
from fugu.envs.simple_spread import SimpleSpread, observation_size

simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")


def _copy_state(world: object, env: SimpleSpread, copy: int) -> None:
    s = env.state
    for a, agent in enumerate(world.agents):  # type: ignore[attr-defined]
        s["position"][copy, a] = agent.state.p_pos
        s["velocity"][copy, a] = agent.state.p_vel
    for m, mark in enumerate(world.landmarks):  # type: ignore[attr-defined]
        s["landmarks"][copy, m] = mark.state.p_pos


@pytest.mark.parametrize("seed", [0, 7])
def test_steps_match_mpe2(seed: int) -> None:
    reference = simple_spread_v3.parallel_env(N=3, local_ratio=0.5, max_cycles=25)
    observations, _ = reference.reset(seed=seed)
    agents = list(reference.possible_agents)
    env = SimpleSpread(num_envs=1, seed=seed)
    env.reset()
    _copy_state(reference.unwrapped.world, env, 0)
    env.observe()
    expected = np.stack([observations[a] for a in agents])
    np.testing.assert_allclose(env.observations, expected, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(seed)
    for step in range(25):
        actions = rng.integers(0, 5, 3)
        if step < 6:  # drive agents 0 and 1 into each other: the contact force is exercised
            actions[:2] = [2, 1] if step % 2 == 0 else [0, 0]
        observations, rewards, _, truncations, _ = reference.step(
            {a: int(actions[k]) for k, a in enumerate(agents)}
        )
        obs, rew, term, trunc, _ = env.step(actions.astype(np.int32))
        finals = env.final_observations if trunc.any() else obs
        expected = np.stack([observations[a] for a in agents])
        np.testing.assert_allclose(finals, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(rew, [rewards[a] for a in agents], rtol=1e-5, atol=1e-5)
        assert trunc.tolist() == [truncations[a] for a in agents]
        assert not term.any()
    assert trunc.all()


def test_contact_force_pushes_overlapping_agents_apart() -> None:
    env = SimpleSpread(num_envs=1, seed=0)
    env.reset()
    env.state["position"][0] = [[0.0, 0.0], [0.1, 0.0], [1.0, 1.0]]
    env.state["velocity"][0] = 0.0
    rewards = env.step(np.zeros(3, dtype=np.int32))[1].copy()
    # both colliding agents pay the local penalty, the third does not
    assert rewards[0] == pytest.approx(rewards[1]) and rewards[2] == pytest.approx(rewards[0] + 0.5)
    env.step(np.zeros(3, dtype=np.int32))
    x = env.state["position"][0, :, 0]
    assert x[0] < 0.0 < 0.1 < x[1]


def test_layout_and_contract() -> None:
    env = SimpleSpread(num_envs=3, num_agents=4, seed=1)
    assert env.single_observation_space.shape == (observation_size(4),) == (24,)
    check_env(lambda: SimpleSpread(num_envs=2, seed=0), num_steps=60)


def test_seeded_runs_are_identical() -> None:
    runs = []
    for _ in range(2):
        env = SimpleSpread(num_envs=4, seed=3)
        env.reset()
        rng = np.random.default_rng(0)
        for _ in range(30):
            env.step(rng.integers(0, 5, 12).astype(np.int32))
        runs.append(env.observations.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
