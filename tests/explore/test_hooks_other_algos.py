"""The exploration hooks are not PPO's: MAPPO's and GRPO's updates see the intrinsic reward."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from fugu.algos.grpo import GRPO, GRPOConfig
from fugu.algos.mappo import MAPPO, MAPPOConfig
from fugu.envs.probes import ProbeMultiagent
from fugu.explore.config import ExploreConfig, make_reward_hooks
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

POLICY = PolicyConfig(hidden_size=16)


def _spy_on_update(algo: Any) -> list[dict[str, torch.Tensor]]:
    """Record the rewards and masks of every batch the algorithm's update receives."""
    seen: list[dict[str, torch.Tensor]] = []
    update = algo.update

    def spy(batch: Any, progress: float = 0.0) -> dict[str, float]:
        seen.append({k: batch[k].clone() for k in ("rewards", "masks") if k in batch})
        return update(batch, progress)

    algo.update = spy
    return seen


def _spy_on_hook(hook: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Record (the env's rewards, the hook's bonus) of every batch the hook scores."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    rewards = hook.rewards

    def spy(batch: Any) -> torch.Tensor:
        bonus = rewards(batch)
        seen.append((batch["rewards"].clone(), bonus.clone()))
        return bonus

    hook.rewards = spy
    return seen


def _check(trainer: Trainer, hook: Any, method: str) -> None:
    """One epoch: the batch the update gets holds the env's rewards plus the hook's bonus."""
    updates = _spy_on_update(trainer.algo)
    scored = _spy_on_hook(hook)
    metrics = trainer.train_epoch()
    trainer.close()
    assert len(updates) == 1 and len(scored) == 1
    env_rewards, bonus = scored[0]
    assert float(bonus.abs().sum()) > 0.0 and metrics[f"reward/{method}_mean"] != 0.0
    masks = updates[0].get("masks", torch.ones_like(env_rewards, dtype=torch.bool))
    expected = env_rewards + torch.where(masks, bonus, torch.zeros_like(bonus))
    assert torch.allclose(updates[0]["rewards"], expected)
    assert f"explore/{method}_raw_mean" in metrics


@pytest.mark.parametrize("method", ["rnd", "icm"])
def test_mappo_update_sees_the_intrinsic_reward(method: str) -> None:
    torch.manual_seed(0)
    env = ProbeMultiagent(num_envs=8, agents=2, seed=0)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    algo = MAPPO.build(MAPPOConfig(team_size=2, seed=0), obs_space, act_space, POLICY)
    hooks = make_reward_hooks(ExploreConfig(method=method), algo, obs_space, act_space)
    assert hooks[0].target == "rewards"  # MAPPO has no intrinsic critic: the bonus is a reward
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=10**6, seed=0),
                      reward_hooks=hooks)  # fmt: skip
    _check(trainer, hooks[0], method)


def test_grpo_update_sees_the_intrinsic_reward() -> None:
    torch.manual_seed(0)
    envs = make_train_envs("deep-sea-v1", 8, seed=0, double_buffer=False, size=4)
    obs_space, act_space = envs[0].single_observation_space, envs[0].single_action_space
    algo = GRPO.build(GRPOConfig(seed=0, group_size=4), obs_space, act_space, POLICY)
    hooks = make_reward_hooks(ExploreConfig(method="rnd"), algo, obs_space, act_space)
    train = TrainConfig(num_steps=8, total_timesteps=10**6, seed=0, double_buffer=False)
    trainer = Trainer(envs, algo, train, reward_hooks=hooks)
    _check(trainer, hooks[0], "rnd")
