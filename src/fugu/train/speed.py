"""Speed probes of the training loop: rollout-only steps per second (policy + envs, no update).

:func:`measure_rollout_sps` builds the same envs, policy and :class:`~fugu.train.loop.Trainer`
as a run and times its collector alone (:meth:`~fugu.train.collect.Collector.collect`: env
steps, acting, sampling and storage; the epoch's episode bookkeeping and batch building are
left out, as the update is); ``benchmarks/rollout.py``
prints its results, and :mod:`fugu.train.benchmark` can call it beside the end-to-end figures.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from fugu.algos.ppo import PPO, PPOConfig
from fugu.models.policy import PolicyConfig, make_policy
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

__all__ = ["RolloutSpeed", "measure_rollout_sps"]


@dataclass(frozen=True)
class RolloutSpeed:
    """One rollout measurement (median over repeats)."""

    env_id: str
    num_envs: int
    num_steps: int
    hidden_size: int
    double_buffer: bool
    torch_threads: int
    steps_per_second: float
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def measure_rollout_sps(
    env_id: str = "cartpole-v1",
    num_envs: int = 4096,
    num_steps: int = 16,
    hidden_size: int = 64,
    double_buffer: bool = True,
    torch_threads: int = 1,
    repeats: int = 5,
    rollouts_per_repeat: int = 4,
    seed: int = 0,
) -> RolloutSpeed:
    """Time rollouts (env steps + policy forward + sampling + storage), without updates.

    Args:
        env_id: Env to collect from.
        num_envs: Rows.
        num_steps: Horizon of one rollout.
        hidden_size: Width of the 2-layer MLP policy.
        double_buffer: Step two env halves, one on a worker thread.
        torch_threads: ``torch.set_num_threads``.
        repeats: Timed repeats (the median is reported).
        rollouts_per_repeat: Rollouts per timed repeat.
        seed: Seed of envs and policy.

    Returns:
        A :class:`RolloutSpeed`.

    Example:
        >>> r = measure_rollout_sps(num_envs=8, num_steps=2, repeats=1, rollouts_per_repeat=1)
        >>> r.steps_per_second > 0
        True
    """
    config = TrainConfig(
        total_timesteps=10**12,
        num_steps=num_steps,
        seed=seed,
        double_buffer=double_buffer,
        torch_threads=torch_threads,
    )
    envs = make_train_envs(env_id, num_envs, seed, double_buffer)
    torch.manual_seed(seed)
    policy = make_policy(
        envs[0].single_observation_space,
        envs[0].single_action_space,
        PolicyConfig(hidden_size=hidden_size),
    )
    trainer = Trainer(envs, PPO(policy, PPOConfig(seed=seed)), config)
    try:
        trainer.collector.collect()  # warm-up (numba, allocator)
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(rollouts_per_repeat):
                trainer.collector.collect()
            elapsed = time.perf_counter() - start
            rates.append(rollouts_per_repeat * trainer.batch_size / elapsed)
    finally:
        trainer.close()
    rates.sort()
    return RolloutSpeed(
        env_id,
        trainer.num_rows,
        num_steps,
        hidden_size,
        double_buffer,
        torch_threads,
        rates[len(rates) // 2],
        repeats,
    )
