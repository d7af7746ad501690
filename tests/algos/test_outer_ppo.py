"""Outer-PPO: identity with plain PPO, the outer (Nesterov) step by hand, biased initialisation,
state round trips, config errors and learning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos import PPO, PPOConfig
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig, make_policy
from fugu.models.outer import OuterOptimizer
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)

OBS = spaces.Box(-1, 1, (4,), np.float32)


def _batch(policy, steps=8, rows=16, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(steps, rows, 4, generator=g)
    actor = PPO(copy.deepcopy(policy), PPOConfig(seed=seed))
    acts, logps, vals = [], [], []
    for t in range(steps):
        out = actor.act(obs[t], None, {})
        acts.append(out.actions.clone())
        logps.append(out.fields["logprobs"].clone())
        vals.append(out.fields["values"].clone())
    terminals = torch.rand(steps, rows, generator=g) < 0.1
    data = {
        "observations": obs,
        "actions": torch.stack(acts),
        "logprobs": torch.stack(logps),
        "values": torch.stack(vals),
        "rewards": torch.randn(steps, rows, generator=g),
        "terminals": terminals,
        "truncations": torch.zeros(steps, rows, dtype=torch.bool),
        "next_values": torch.randn(steps, rows, generator=g),
        "starts": torch.zeros(steps, rows, dtype=torch.bool),
        "masks": torch.ones(steps, rows, dtype=torch.bool),
    }
    return Batch(data, None)


def _params(algo):
    return [p.detach().clone() for p in algo.policy.parameters()]


def _policy():
    torch.manual_seed(0)
    return make_policy(OBS, spaces.Discrete(3), PolicyConfig(hidden_size=16))


def test_outer_lr_one_without_momentum_is_plain_ppo_exactly():
    policy = _policy()
    config = PPOConfig(seed=2, update_epochs=3)
    assert not PPOConfig(outer_lr=1.0, outer_momentum=0.0).uses_outer
    plain = PPO(copy.deepcopy(policy), config)
    outer = PPO(copy.deepcopy(policy), config)
    outer.outer = OuterOptimizer(outer.policy.parameters(), lr=1.0, momentum=0.0)  # forced path
    for seed in range(3):
        batch = _batch(policy, seed=seed)
        plain.update(batch)
        metrics = outer.update(batch)
        assert metrics["train/outer_grad_norm"] > 0
    for a, b in zip(_params(plain), _params(outer)):
        assert torch.equal(a, b)


def test_outer_settings_change_the_update():
    policy = _policy()
    batch = _batch(policy)
    plain = PPO(copy.deepcopy(policy), PPOConfig(seed=2))
    outer = PPO(copy.deepcopy(policy), PPOConfig(seed=2, outer_lr=2.0))
    start = _params(plain)
    plain.update(batch), outer.update(batch)
    # lr 2 moves twice as far as the inner loop did
    for s, p, o in zip(start, _params(plain), _params(outer)):
        torch.testing.assert_close(o - s, 2 * (p - s), rtol=1e-4, atol=1e-6)


def test_nesterov_momentum_and_biased_init_against_hand_computed_steps():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    outer = OuterOptimizer([w], lr=0.5, momentum=0.9, nesterov=True, init_coef=0.5)
    outer.begin()  # no momentum yet: the inner loop starts at theta
    assert w.tolist() == [1.0, -2.0]
    with torch.no_grad():
        w.sub_(torch.tensor([0.2, -0.4]))  # inner change: g = (0.2, -0.4)
    norm = outer.step()
    assert norm == pytest.approx(float(np.hypot(0.2, 0.4)), rel=1e-6)
    # m = g; d = g + 0.9 m = 1.9 g; theta = theta_k - 0.5 d
    torch.testing.assert_close(w.detach(), torch.tensor([1.0 - 0.19, -2.0 + 0.38]))
    theta = w.detach().clone()
    outer.begin()  # biased start: theta - 0.5 m
    torch.testing.assert_close(w.detach(), theta - 0.5 * torch.tensor([0.2, -0.4]))
    with torch.no_grad():
        w.copy_(theta - torch.tensor([0.1, 0.1]))  # inner end; g measured from theta
    outer.step()
    g = torch.tensor([0.1, 0.1])
    m = 0.9 * torch.tensor([0.2, -0.4]) + g
    torch.testing.assert_close(w.detach(), theta - 0.5 * (g + 0.9 * m))
    heavy = torch.nn.Parameter(torch.tensor([1.0]))
    hb = OuterOptimizer([heavy], lr=1.0, momentum=0.5, nesterov=False)
    for _ in range(2):
        hb.begin()
        with torch.no_grad():
            heavy.sub_(0.1)
        hb.step()
    # step 1: m = 0.1 -> 0.9; step 2: m = 0.05 + 0.1 = 0.15 -> 0.75
    assert heavy.item() == pytest.approx(0.75)


def test_outer_momentum_is_saved_and_restored():
    policy = _policy()
    config = PPOConfig(seed=1, outer_lr=0.8, outer_momentum=0.5, outer_init_coef=0.3)
    a = PPO(copy.deepcopy(policy), config)
    a.update(_batch(policy, seed=0))
    weights = copy.deepcopy(a.policy.state_dict())
    state = copy.deepcopy(a.state_dict())
    assert "outer" in state
    b = PPO(copy.deepcopy(policy), config)
    b.policy.load_state_dict(weights)
    b.load_state_dict(state)
    a.update(_batch(policy, seed=1))
    b.update(_batch(policy, seed=1))
    for x, y in zip(_params(a), _params(b)):
        assert torch.equal(x, y)


def test_outer_config_errors():
    with pytest.raises(APIUsageError, match="outer_lr"):
        PPOConfig(outer_lr=0.0)
    with pytest.raises(APIUsageError, match="outer_momentum"):
        PPOConfig(outer_momentum=1.0)
    with pytest.raises(APIUsageError, match="outer_init_coef"):
        PPOConfig(outer_init_coef=-1.0)
    with pytest.raises(APIUsageError, match="begin"):
        OuterOptimizer([torch.nn.Parameter(torch.zeros(1))]).step()


def test_outer_ppo_learns_the_observation_probe():
    envs = make_train_envs("probe-observation-v1", 32, seed=0, double_buffer=False)
    torch.manual_seed(0)
    config = PPOConfig(learning_rate=3e-3, outer_lr=1.5, outer_momentum=0.3, seed=0)
    algo = PPO.build(config, envs[0].single_observation_space, envs[0].single_action_space,
                     PolicyConfig(hidden_size=16))  # fmt: skip
    trainer = Trainer(envs, algo, TrainConfig(num_steps=8, total_timesteps=32 * 8 * 30, seed=0,
                                              double_buffer=False))  # fmt: skip
    trainer.train()
    assert trainer.episodes.mean_return(last=64) > 0.9
    trainer.close()
