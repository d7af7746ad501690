"""cartpole-swingup-v1: seeded determinism, reward range, time limit, MuJoCo parity."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.envs.cartpole_swingup import MAX_EPISODE_STEPS, CartPoleSwingup


def _run(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    env = CartPoleSwingup(num_envs=3, seed=seed)
    env.reset()
    rng = np.random.default_rng(0)
    obs, rewards = [], []
    for _ in range(steps):
        o, r, *_ = env.step(rng.uniform(-1, 1, (3, 1)).astype(np.float32))
        obs.append(o.copy())
        rewards.append(r.copy())
    return np.stack(obs), np.stack(rewards)


def test_seeded_runs_are_identical_and_seeds_differ() -> None:
    a_obs, a_rew = _run(3, 50)
    b_obs, b_rew = _run(3, 50)
    c_obs, _ = _run(4, 50)
    assert np.array_equal(a_obs, b_obs) and np.array_equal(a_rew, b_rew)
    assert not np.array_equal(a_obs, c_obs)


def test_reset_hangs_the_pole_down_and_observes_cos_sin() -> None:
    env = fugu.make("cartpole-swingup-v1", num_envs=64, seed=0)
    obs, _ = env.reset()
    assert obs.shape == (64, 5)
    assert np.all(obs[:, 1] < -0.99)  # cos(theta) ~ -1
    assert np.allclose(obs[:, 1] ** 2 + obs[:, 2] ** 2, 1.0, atol=1e-6)
    assert np.abs(obs[:, [0, 3, 4]]).max() < 0.1


def test_rewards_in_unit_interval_and_truncation_at_1000() -> None:
    env = CartPoleSwingup(num_envs=2, seed=0, info_interval=MAX_EPISODE_STEPS)
    env.reset()
    rng = np.random.default_rng(1)
    for t in range(MAX_EPISODE_STEPS):
        _, r, term, trunc, infos = env.step(rng.uniform(-1, 1, (2, 1)).astype(np.float32))
        assert np.all((r >= 0) & (r <= 1)) and not term.any()
        assert trunc.all() == (t == MAX_EPISODE_STEPS - 1)
    assert infos[0]["episode_length"] == MAX_EPISODE_STEPS
    assert 0 <= infos[0]["episode_return"] <= MAX_EPISODE_STEPS


def test_upright_still_centred_pole_earns_about_one() -> None:
    env = CartPoleSwingup(num_envs=1, seed=0)
    env.reset()
    env.state["physics"][0] = [0.0, 0.0, 0.0, 0.0]
    _, r, *_ = env.step(np.zeros((1, 1), dtype=np.float32))
    assert r[0] > 0.999


def test_rail_limit_keeps_the_cart_near_the_rail() -> None:
    env = CartPoleSwingup(num_envs=1, seed=0)
    env.reset()
    for _ in range(400):
        obs, *_ = env.step(np.ones((1, 1), dtype=np.float32))
        assert obs[0, 0] < 2.0


_XML = """<mujoco><option timestep="0.01" integrator="RK4"><flag contact="disable"/></option>
<worldbody><body name="cart" pos="0 0 1">
<joint name="slider" type="slide" limited="true" axis="1 0 0" range="-1.8 1.8"
 solreflimit=".08 1" damping="5e-4"/>
<geom type="box" size="0.2 0.15 0.1" mass="1"/>
<body name="pole"><joint name="hinge" type="hinge" axis="0 1 0" damping="2e-6"/>
<geom type="capsule" fromto="0 0 0 0 0 1" size="0.045" mass=".1"/></body></body></worldbody>
<actuator><motor joint="slider" gear="10" ctrllimited="true" ctrlrange="-1 1"/></actuator>
</mujoco>"""


def test_matches_mujoco_away_from_the_rail_ends() -> None:
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_string(_XML)
    data = mujoco.MjData(model)
    env = CartPoleSwingup(num_envs=1, seed=5)
    env.reset()
    state = env.state["physics"][0]
    data.qpos[:] = state[:2]
    data.qvel[:] = state[2:]
    rng = np.random.default_rng(0)
    for t in range(100):
        a = float(np.clip(rng.normal(0.0, 0.5) + (0.8 if (t // 40) % 2 else -0.8), -1, 1))
        data.ctrl[0] = a
        mujoco.mj_step(model, data)
        env.step(np.array([[a]], dtype=np.float32))
        ours = env.state["physics"][0]
        assert abs(ours[0]) < 1.8  # the comparison stays off the soft limits
        np.testing.assert_allclose(ours, np.r_[data.qpos, data.qvel], atol=1e-6)
