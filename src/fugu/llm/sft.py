"""Supervised warm start: teacher-forced training on generated solutions, and evaluation.

Before RL a model from scratch must already produce answers of the right form now and then
(GRPO learns only from groups where some completions score better than others). SFT on the
tasks' own worked solutions gives it that; :func:`evaluate` measures greedy accuracy on a fixed
problem set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fugu.llm.policy import LMPolicy
from fugu.llm.tasks import Problem, Task

__all__ = ["SFTConfig", "evaluate", "sft_loss", "train_sft"]


@dataclass(frozen=True)
class SFTConfig:
    """Settings of :func:`train_sft`."""

    steps: int = 200
    """Optimiser steps."""
    batch_size: int = 64
    """Problems per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""


def sft_loss(policy: LMPolicy, prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
    """Mean negative log-likelihood per completion token (``eos`` included), given the prompt."""
    p_ids, p_mask = policy.encode_prompts(prompts)
    c_ids, c_mask = policy.encode_completions(completions)
    logp = policy.token_logprobs(p_ids, p_mask, c_ids, c_mask)
    weights = c_mask.to(logp.dtype)
    return -(logp * weights).sum() / weights.sum()


def train_sft(
    policy: LMPolicy,
    sample: Callable[[np.random.Generator, int], list[Problem]],
    config: SFTConfig = SFTConfig(),
    *,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Teacher-force ``policy`` on ``problem.solution`` of freshly sampled problems.

    Args:
        policy: the model to train (in place).
        sample: draws ``n`` problems with a numpy generator (e.g. ``task.sample``).
        config: steps, batch size, learning rate.
        seed: seeds the problem stream.
        callback: called with ``(step, loss)`` after each step (progress bars).

    Returns:
        The loss of each step.
    """
    rng = np.random.default_rng(seed)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    policy.train()
    losses: list[float] = []
    for step in range(config.steps):
        problems = sample(rng, config.batch_size)
        loss = sft_loss(policy, [p.prompt for p in problems], [p.solution for p in problems])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        losses.append(float(loss.item()))
        if callback is not None:
            callback(step, losses[-1])
    policy.eval()
    return losses


def evaluate(
    policy: LMPolicy,
    task: Task,
    problems: Sequence[Problem],
    *,
    max_new_tokens: int = 8,
    batch_size: int = 256,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> float:
    """Share of ``problems`` solved (greedy decoding unless ``temperature > 0``)."""
    solved = 0.0
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        gen = policy.generate(
            [p.prompt for p in chunk],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            generator=generator,
        )
        solved += sum(task.verify(p, text) for p, text in zip(chunk, gen.texts))
    return solved / max(len(problems), 1)
