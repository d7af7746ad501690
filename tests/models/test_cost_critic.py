"""Cost GAE and episode costs against slow references; env/cost from the trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu import ops
from fugu.core.registry import make
from fugu.models.cost_critic import CostCritic
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer


def _slow_cost_gae(costs, values, next_values, terminals, truncations, gamma, lam):
    steps, rows = costs.shape
    out = np.zeros((steps, rows))
    for n in range(rows):
        running = 0.0
        for t in reversed(range(steps)):
            bootstrap = 0.0 if terminals[t, n] else gamma * next_values[t, n]
            delta = costs[t, n] + bootstrap - values[t, n]
            if terminals[t, n] or truncations[t, n]:
                running = 0.0
            running = delta + gamma * lam * running
            out[t, n] = running
    return out


def test_cost_gae_matches_a_slow_reference_with_truncations_bootstrapped() -> None:
    gen = torch.Generator().manual_seed(0)
    steps, rows = 12, 3
    obs = torch.randn(steps, rows, 4, generator=gen)
    next_obs = torch.cat([obs[1:], torch.randn(1, rows, 4, generator=gen)])
    terminals = torch.zeros(steps, rows, dtype=torch.bool)
    truncations = torch.zeros(steps, rows, dtype=torch.bool)
    terminals[4, 0] = True
    truncations[7, 1] = True
    truncations[2, 2] = True
    # an ended step's next observation is the episode's final one, not the next row's first
    next_obs[7, 1] = torch.randn(4, generator=gen)
    next_obs[2, 2] = torch.randn(4, generator=gen)
    costs = (torch.rand(steps, rows, generator=gen) < 0.3).float()
    batch = {
        "observations": obs, "next_observations": next_obs, "costs": costs,
        "terminals": terminals, "truncations": truncations,
    }  # fmt: skip
    torch.manual_seed(0)
    critic = CostCritic(4, hidden_size=8)
    values, advantages, returns = critic.targets(batch, lambda x: x, 0.9, 0.8)
    with torch.no_grad():
        v = critic.values(obs.reshape(-1, 4)).reshape(steps, rows)
        nv = critic.values(next_obs.reshape(-1, 4)).reshape(steps, rows)
    expected = _slow_cost_gae(
        costs.numpy(), v.numpy(), nv.numpy(), terminals.numpy(), truncations.numpy(), 0.9, 0.8
    )
    np.testing.assert_allclose(advantages.numpy(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(returns, advantages + values)


def test_episode_sums_match_a_loop_and_carry_across_rollouts() -> None:
    gen = torch.Generator().manual_seed(1)
    costs = torch.rand(20, 4, generator=gen)
    dones = torch.rand(20, 4, generator=gen) < 0.2
    carry = torch.zeros(4, dtype=torch.float64)
    ended_a, carry = ops.episode_sums(costs[:10], dones[:10], carry)
    ended_b, carry = ops.episode_sums(costs[10:], dones[10:], carry)
    expected, running = [], [0.0] * 4
    for t in range(20):
        for n in range(4):
            running[n] += float(costs[t, n])
            if dones[t, n]:
                expected.append(running[n])
                running[n] = 0.0
    np.testing.assert_allclose(torch.cat([ended_a, ended_b]).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(carry.numpy(), running, rtol=1e-6)


def test_trainer_logs_episode_costs_of_any_algorithm() -> None:
    from fugu.algos.ppo import PPO
    from fugu.models import make_policy

    env = make("hazard-nav-v1", num_envs=4, seed=0, info_interval=1)
    algo = PPO(make_policy(env.single_observation_space, env.single_action_space))
    trainer = Trainer(env, algo, TrainConfig(num_steps=100, total_timesteps=10**6))
    seen = [trainer.train_epoch() for _ in range(4)]
    assert any("env/cost" in m for m in seen)
    # the trainer's own sums of the stored costs equal the env's reported episode costs
    for metrics in seen:
        assert ("env/cost" in metrics) == ("env/episode_cost" in metrics)
        if "env/cost" in metrics:
            assert metrics["env/cost"] == pytest.approx(metrics["env/episode_cost"])
    assert trainer.episode_costs is not None and len(trainer.episode_costs.returns) > 0
    state = trainer.state_dict()
    assert state["episode_costs"]["returns"] == list(trainer.episode_costs.returns)
    trainer.close()
