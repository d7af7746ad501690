"""Learning: PPO solves the probe envs (each tests one piece) and CartPole within a budget."""

from __future__ import annotations

import pytest
import torch

from fugu.algos import PPO, PPOConfig
from fugu.models import PolicyConfig, make_policy
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine


def _train(env_id: str, budget: int, kind: str = "mlp", rows: int = 64, **ppo) -> Trainer:
    envs = make_train_envs(env_id, rows, seed=0)
    config = TrainConfig(total_timesteps=budget, num_steps=8)
    torch.manual_seed(0)
    policy = make_policy(
        envs[0].single_observation_space,
        envs[0].single_action_space,
        PolicyConfig(kind=kind, hidden_size=32),
    )
    settings = dict(
        learning_rate=1e-2, ent_coef=0.0, num_minibatches=2, lr_schedule="constant", **ppo
    )
    trainer = Trainer(envs, PPO(policy, PPOConfig(**settings)), config)
    trainer.train()
    trainer.close()
    return trainer


@pytest.mark.parametrize(
    ("env_id", "threshold"),
    [
        ("probe-constant-v1", 0.99),
        ("probe-observation-v1", 0.95),
        ("probe-delayed-v1", 0.95),
        ("probe-multiagent-v1", 0.95),
        ("probe-continuous-v1", 0.8),
    ],
)
def test_ppo_solves_probe(env_id, threshold):
    trainer = _train(env_id, 6000)
    assert trainer.mean_return >= threshold


def test_value_learning_on_constant_probe():
    trainer = _train("probe-constant-v1", 6000)
    obs = torch.from_numpy(trainer.envs[0].observations)
    values = trainer.algo.bootstrap(obs, None)
    torch.testing.assert_close(values, torch.ones_like(values), atol=0.1, rtol=0)


def test_lstm_solves_memory_probe_with_vtrace():
    trainer = _train("probe-memory-v1", 16000, kind="lstm", vtrace_rho_clip=1.0, vtrace_c_clip=1.0)
    assert trainer.mean_return >= 0.9


def test_ppo_solves_cartpole_with_the_preset():
    """The shipped preset solves (mean of the last 100 returns >= 475) within its budget."""
    from fugu.train.experiment import ExperimentConfig

    preset = ExperimentConfig.from_preset("cartpole-v1")
    rows = preset.env.num_envs
    envs = make_train_envs("cartpole-v1", rows, 0, preset.train.double_buffer)
    torch.manual_seed(0)
    policy = make_policy(
        envs[0].single_observation_space, envs[0].single_action_space, preset.policy
    )
    trainer = Trainer(envs, PPO(policy, preset.ppo), preset.train)
    while not trainer.done:
        trainer.train_epoch()
        if len(trainer.episode_returns) >= 100 and trainer.mean_return >= 475:
            break
    trainer.close()
    assert trainer.mean_return >= 475, trainer.mean_return


def test_bf16_autocast_learns_on_cpu():
    trainer = _train("probe-observation-v1", 6000, amp="bf16")
    assert trainer.mean_return >= 0.9
