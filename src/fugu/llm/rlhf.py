"""RLHF/RLAIF: label sampled pairs, fit a Bradley-Terry reward model, run GRPO against it.

:func:`train_rlaif` is the whole loop with any labeller (a person's choices recorded as a
callable, a rule, a reward model or a judge LM), optionally with constitutional penalties added
to the learned reward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from fugu.llm.constitution import Constitution
from fugu.llm.feedback import Labeller, label_pairs, sample_pairs
from fugu.llm.grpo import PromptSource, TokenGRPO, TokenGRPOConfig
from fugu.llm.policy import LMPolicy
from fugu.llm.reward import RewardModel, train_bradley_terry

__all__ = ["RLAIFConfig", "RLAIFReport", "train_rlaif"]


@dataclass(frozen=True)
class RLAIFConfig:
    """Settings of :func:`train_rlaif`."""

    prompts: int = 512
    """Prompts whose two sampled completions are labelled."""
    test_fraction: float = 0.2
    """Share of labelled pairs held out to score the reward model."""
    rm_steps: int = 200
    """Bradley-Terry optimiser steps."""
    rm_lr: float = 1e-3
    """Reward-model learning rate."""
    grpo_steps: int = 30
    """GRPO steps against the learned reward."""
    grpo: TokenGRPOConfig = field(default_factory=TokenGRPOConfig)
    """The GRPO settings (its ``max_new_tokens`` also bounds the labelled samples)."""


@dataclass
class RLAIFReport:
    """What :func:`train_rlaif` returns."""

    preferences: int
    rm_train_accuracy: float
    rm_test_accuracy: float
    grpo: list[dict[str, float]]
    violation_rates: dict[str, float]


def train_rlaif(
    policy: LMPolicy,
    source: PromptSource,
    labeller: Labeller,
    reward_model: RewardModel,
    config: RLAIFConfig = RLAIFConfig(),
    *,
    constitution: Constitution | None = None,
    seed: int = 0,
    callback: Callable[[str, int, dict[str, float]], None] | None = None,
) -> RLAIFReport:
    """Label, fit the reward model, then improve ``policy`` against it (both in place).

    Args:
        policy: the policy that samples the pairs and is trained.
        source: draws prompts.
        labeller: prefers one of two completions.
        reward_model: fitted to the labels.
        config: sizes and steps.
        constitution: its penalties are subtracted from the learned reward; its violation
            rates over the GRPO samples are reported.
        seed: seeds prompts, sampling and the fits.
        callback: ``(phase, step, metrics)`` after each GRPO step (phase ``"grpo"``).
    """
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    problems = source(rng, config.prompts)
    prompts = [p.prompt for p in problems]
    firsts, seconds = sample_pairs(
        policy, prompts, max_new_tokens=config.grpo.max_new_tokens, generator=generator
    )
    data = label_pairs(labeller, prompts, firsts, seconds)
    if len(data) < 2:
        raise ValueError(
            f"the labeller separated only {len(data)} pairs; sample more prompts or check it"
        )
    order = rng.permutation(len(data))
    n_test = max(1, int(len(data) * config.test_fraction))
    test = [data[int(i)] for i in order[:n_test]]
    train = [data[int(i)] for i in order[n_test:]]
    report = train_bradley_terry(
        reward_model, train, test, steps=config.rm_steps, lr=config.rm_lr, seed=seed
    )
    reward = reward_model.reward_fn()
    if constitution is not None:
        constitution.reset_counts()
        reward = constitution.penalized(reward)
    trainer = TokenGRPO(policy, reward, config.grpo, seed=seed)
    history = []
    for step in range(config.grpo_steps):
        metrics = trainer.step(source)
        history.append(metrics)
        if callback is not None:
            callback("grpo", step, metrics)
    rates = constitution.rates() if constitution is not None else {}
    return RLAIFReport(len(data), report.train_accuracy, report.test_accuracy, history, rates)
