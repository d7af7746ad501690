"""PPO's normalisations and network options against slow references: running statistics,
reward scaling, observation and value normalisation, a separate critic, Box action clipping."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos import PPO, PPOConfig
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig, RunningNorm, make_policy
from fugu.ops import running_returns
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)


def test_running_norm_equals_numpy_over_any_split():
    rng = np.random.default_rng(0)
    data = rng.normal(5.0, 3.0, (100, 3))
    norm = RunningNorm((3,))
    for part in np.split(data, [7, 8, 50, 99]):
        norm.update(torch.from_numpy(part))
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-12)
    x = torch.tensor([[5.0, 5.0, 1e9]])
    out = norm(x)
    assert out[0, 2] == 10.0  # clipped
    inside = torch.tensor([[4.0, 6.0, 5.5]])
    torch.testing.assert_close(norm.denormalize(norm(inside)), inside, rtol=1e-5, atol=1e-5)


def test_running_returns_match_a_slow_loop():
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(9, 4, generator=g)
    dones = torch.rand(9, 4, generator=g) < 0.3
    carry = torch.randn(4, generator=g, dtype=torch.float64)
    got, last = running_returns(rewards, dones, carry, 0.9)
    want = np.zeros((9, 4))
    running = carry.numpy().copy()
    for t in range(9):
        running = running * 0.9 + rewards[t].double().numpy()
        want[t] = running
        running[dones[t].numpy()] = 0.0
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(last.numpy(), running, rtol=1e-12)


def _batch(policy, steps=6, rows=5, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    algo = PPO(copy.deepcopy(policy), PPOConfig(seed=seed))
    obs = torch.randn(steps, rows, 3, generator=g) * 4 + 2
    acts, logps, vals = [], [], []
    for t in range(steps):
        out = algo.act(obs[t], None, {})
        acts.append(out.actions)
        logps.append(out.fields["logprobs"])
        vals.append(out.fields["values"])
    terminals = torch.rand(steps, rows, generator=g) < 0.2
    return Batch({
        "observations": obs, "actions": torch.stack(acts), "logprobs": torch.stack(logps),
        "values": torch.stack(vals), "rewards": torch.randn(steps, rows, generator=g) * scale,
        "terminals": terminals, "truncations": torch.zeros_like(terminals),
        "next_values": torch.zeros(steps, rows), "masks": torch.ones(steps, rows, dtype=torch.bool),
        "starts": torch.zeros(steps, rows, dtype=torch.bool),
    })  # fmt: skip


def test_reward_scaling_divides_by_the_std_of_discounted_returns():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    batch = _batch(policy, scale=100.0)
    algo = PPO(policy, PPOConfig(norm_reward=True, clip_reward=5.0, gamma=0.9))
    scaled = algo.scaled_rewards(batch)
    returns, _ = running_returns(
        batch["rewards"], batch["terminals"], torch.zeros(5, dtype=torch.float64), 0.9
    )
    std = np.sqrt(returns.numpy().var() + 1e-8)
    want = np.clip(batch["rewards"].numpy() / std, -5.0, 5.0)
    np.testing.assert_allclose(scaled.numpy(), want, rtol=1e-5)
    assert scaled.abs().max() <= 5.0 and batch["rewards"].abs().max() > 5.0
    assert "reward_norm" in algo.modules()  # saved with the weights
    assert algo.state_dict()["discounted"].shape == (5,)  # carried across rollouts


def test_observation_statistics_move_after_the_update_and_travel_with_the_weights():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8, norm_obs=True))
    batch = _batch(policy)
    algo = PPO(policy, PPOConfig(num_minibatches=1, update_epochs=1))
    obs = batch["observations"]
    before = algo.act(obs[0], None, {}, deterministic=True).fields["values"]
    algo.update(batch)
    flat = obs.reshape(-1, 3).double()
    np.testing.assert_allclose(policy.obs_norm.mean.numpy(), flat.mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(policy.obs_norm.var.numpy(), flat.var(0, unbiased=False).numpy(),
                               rtol=1e-6)  # fmt: skip
    state = policy.state_dict()
    assert {"obs_norm.mean", "obs_norm.var", "obs_norm.count"} <= set(state)
    fresh = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8, norm_obs=True))
    fresh.load_state_dict(state)
    x = torch.randn(4, 3)
    torch.testing.assert_close(fresh.forward_eval(x)[1], policy.forward_eval(x)[1])
    after = algo.act(obs[0], None, {}, deterministic=True).fields["values"]
    assert not torch.allclose(before, after)


def test_value_normalisation_learns_in_normalised_units_and_hands_out_real_values():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8))
    algo = PPO(policy, PPOConfig(norm_value=True))
    algo.value_norm.mean.fill_(10.0)
    algo.value_norm.var.fill_(4.0)
    algo.value_norm.count.fill_(1.0)
    x = torch.randn(6, 3)
    head = policy.forward_eval(x)[1]
    torch.testing.assert_close(algo.bootstrap(x, None), head * 2.0 + 10.0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(algo.act(x, None, {}).fields["values"], head * 2.0 + 10.0,
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    batch = _batch(policy, scale=50.0)
    algo.update(batch)
    assert algo.value_norm.count > 1.0 and "value_norm" in algo.modules()


def test_separate_critic_shares_nothing_with_the_actor():
    policy = make_policy(OBS, spaces.Discrete(2), PolicyConfig(hidden_size=8, separate_critic=True))
    _, values, _ = policy.forward_eval(torch.randn(4, 3))
    values.sum().backward()
    actor = [p for n, p in policy.named_parameters() if n.startswith("encoder.")]
    critic = [p for n, p in policy.named_parameters() if n.startswith("critic_encoder.")]
    assert actor and critic
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in actor)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic)
    with pytest.raises(APIUsageError, match="separate_critic"):
        PolicyConfig(kind="lstm", separate_critic=True)
    assert np.isfinite(PPO(policy).update(_batch(policy))["loss/value"])


def test_box_actions_reach_the_env_clipped_and_the_rollout_as_sampled():
    envs = make_train_envs("pendulum-v1", 8, seed=0, double_buffer=False)
    policy = make_policy(envs[0].single_observation_space, envs[0].single_action_space,
                         PolicyConfig(hidden_size=8, init_log_std=2.0))  # fmt: skip
    trainer = Trainer(envs, PPO(policy), TrainConfig(num_steps=8, total_timesteps=10**6))
    batch = trainer.collect()
    high = float(envs[0].single_action_space.high[0])
    assert batch["actions"].abs().max() > high  # sampled beyond the bounds
    assert np.abs(envs[0].actions).max() <= high  # the env got them clipped
    trainer.close()


def test_config_errors():
    with pytest.raises(APIUsageError, match="clip_reward"):
        PPOConfig(clip_reward=0.0)
    with pytest.raises(APIUsageError, match="obs_clip"):
        PolicyConfig(obs_clip=0.0)
