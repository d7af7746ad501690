"""GRPO and DAPO on token sequences.

Each step draws ``prompts_per_step`` prompts, samples ``group_size`` completions of each, scores
them with a reward function (a verifier, a reward model...), and pushes up the log-probability
of completions that beat their group's mean (:func:`fugu.ops.group.group_advantages`) with the
clipped surrogate of :func:`fugu.ops.group.grouped_clip_loss`. There is no critic.

DAPO is this configuration with four switches (:meth:`TokenGRPOConfig.dapo` turns all on):

- ``clip_high`` above ``clip_low`` (clip-higher: rare tokens may grow faster than they shrink);
- ``dynamic_sampling``: groups whose completions all scored the same carry no gradient; they
  are dropped and more prompts are sampled until the batch is full again (``refill_rounds``
  and the extra completions are reported);
- ``token_level``: the loss is a mean over all tokens of the batch, not a mean of per-sequence
  means (long completions are not down-weighted);
- ``overlong_filter`` (truncated completions are left out of the loss) and
  ``overlong_buffer`` (the soft overlong punishment of
  :func:`fugu.ops.group.soft_overlong_penalty` added to the reward).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from fugu.llm.policy import Generation, LMPolicy
from fugu.llm.tasks import Problem, Task
from fugu.ops.group import (
    group_advantages,
    group_has_signal,
    grouped_clip_loss,
    kl_to_reference,
    soft_overlong_penalty,
)

__all__ = [
    "GroupBatch",
    "PromptSource",
    "RewardFn",
    "TokenGRPO",
    "TokenGRPOConfig",
    "task_reward",
]

#: Draws ``n`` problems (prompts) with a numpy generator.
PromptSource = Callable[[np.random.Generator, int], list[Problem]]
#: Scores completions: one float per ``(problem, completion)`` pair.
RewardFn = Callable[[Sequence[Problem], Sequence[str]], Sequence[float]]


def task_reward(task: Task) -> RewardFn:
    """The verifier of ``task`` as a :data:`RewardFn`."""

    def reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        return [task.verify(p, c) for p, c in zip(problems, completions)]

    return reward


@dataclass(frozen=True)
class TokenGRPOConfig:
    """Settings of :class:`TokenGRPO` (the defaults are GRPO; see :meth:`dapo`)."""

    group_size: int = 8
    """Completions sampled per prompt (G)."""
    prompts_per_step: int = 16
    """Groups in each update batch."""
    max_new_tokens: int = 8
    """Completion budget; completions without ``eos`` by then are truncated."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts."""
    top_k: int = 0
    """Top-k filter of the rollouts (0: off)."""
    top_p: float = 1.0
    """Nucleus filter of the rollouts (1: off)."""
    lr: float = 3e-4
    """Adam learning rate."""
    epochs: int = 1
    """Passes over each batch."""
    minibatches: int = 2
    """Optimiser steps per pass (more than one makes the update off-policy, where clipping
    matters)."""
    clip_low: float = 0.2
    """Lower clip width of the ratio."""
    clip_high: float | None = None
    """Upper clip width (``None``: ``clip_low``; DAPO's clip-higher: 0.28)."""
    token_level: bool = False
    """Average the loss over all tokens of a minibatch (DAPO) instead of per sequence."""
    dynamic_sampling: bool = False
    """Drop groups without reward variance and refill the batch with new prompts."""
    max_refill_rounds: int = 4
    """Most extra sampling rounds per step under dynamic sampling."""
    overlong_filter: bool = False
    """Leave truncated completions out of the loss."""
    overlong_buffer: int = 0
    """Soft overlong punishment window in tokens (0: off)."""
    overlong_penalty: float = 1.0
    """Scale of the soft overlong punishment."""
    kl_coef: float = 0.0
    """Weight of the k3 KL to the frozen reference policy (0: no reference kept)."""
    scale_advantages: bool = True
    """Divide advantages by the group's std (``False``: Dr. GRPO's centring only)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2, got {self.group_size}")
        if self.prompts_per_step < 1 or self.minibatches < 1 or self.epochs < 1:
            raise ValueError("prompts_per_step, minibatches and epochs must be >= 1")
        if self.overlong_buffer < 0 or self.overlong_buffer > self.max_new_tokens:
            raise ValueError(
                f"overlong_buffer must be in 0..max_new_tokens ({self.max_new_tokens}), "
                f"got {self.overlong_buffer}"
            )

    @classmethod
    def dapo(cls, **overrides: object) -> TokenGRPOConfig:
        """DAPO: clip-higher 0.2/0.28, dynamic sampling, token-level loss, overlong filtering
        and soft punishment (a quarter of the budget), no KL."""
        base = cls()
        budget = int(overrides.get("max_new_tokens", base.max_new_tokens))  # type: ignore[call-overload]
        values: dict[str, object] = {
            "clip_high": 0.28,
            "dynamic_sampling": True,
            "token_level": True,
            "overlong_filter": True,
            "overlong_buffer": max(1, budget // 4),
            "kl_coef": 0.0,
        }
        values.update(overrides)
        return replace(base, **values)  # type: ignore[arg-type]


@dataclass
class GroupBatch:
    """One update batch: completions, rewards and group labels."""

    generation: Generation
    rewards: Tensor
    """``[N]`` shaped rewards (verifier plus overlong punishment)."""
    raw_rewards: Tensor
    """``[N]`` the reward function's own scores."""
    group_ids: Tensor
    """``[N]`` group of each completion."""
    refill_rounds: int
    """Extra sampling rounds dynamic sampling needed."""
    completions_sampled: int
    """Completions generated for this batch (kept or not)."""


class TokenGRPO:
    """GRPO/DAPO trainer of an :class:`~fugu.llm.policy.LMPolicy`.

    Args:
        policy: the model to train (in place).
        reward_fn: scores completions.
        config: the settings.
        reference: a frozen policy for the KL penalty (a copy of ``policy`` is taken when
            ``config.kl_coef > 0`` and none is given).
        seed: seeds prompt draws and sampling.
    """

    def __init__(
        self,
        policy: LMPolicy,
        reward_fn: RewardFn,
        config: TokenGRPOConfig = TokenGRPOConfig(),
        *,
        reference: LMPolicy | None = None,
        seed: int = 0,
    ) -> None:
        self.policy = policy
        self.reward_fn = reward_fn
        self.config = config
        if config.kl_coef > 0 and reference is None:
            reference = copy.deepcopy(policy)
        self.reference = reference
        if self.reference is not None:
            self.reference.requires_grad_(False)
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=policy.device).manual_seed(seed)

    def _sample_groups(self, source: PromptSource, num_prompts: int, offset: int) -> GroupBatch:
        cfg = self.config
        problems = source(self.rng, num_prompts)
        repeated = [p for p in problems for _ in range(cfg.group_size)]
        gen = self.policy.generate(
            [p.prompt for p in repeated],
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            generator=self.generator,
        )
        raw = torch.tensor(self.reward_fn(repeated, gen.texts), dtype=torch.float32)
        rewards = raw.clone()
        if cfg.overlong_buffer > 0:
            lengths = torch.where(gen.truncated, cfg.max_new_tokens + 1, gen.lengths.cpu())
            penalty = soft_overlong_penalty(lengths, cfg.max_new_tokens, cfg.overlong_buffer)
            rewards = rewards + cfg.overlong_penalty * penalty
        ids = offset + torch.arange(num_prompts).repeat_interleave(cfg.group_size)
        return GroupBatch(gen, rewards, raw, ids, 0, len(repeated))

    def collect(self, source: PromptSource) -> GroupBatch:
        """Sample one update batch (refilled under dynamic sampling)."""
        cfg = self.config
        target = cfg.prompts_per_step
        batch = self._sample_groups(source, target, 0)
        if not cfg.dynamic_sampling:
            return batch
        kept: list[GroupBatch] = []
        groups, rounds, sampled, offset = 0, 0, 0, 0
        while True:
            sampled += batch.completions_sampled
            keep = group_has_signal(batch.rewards, batch.group_ids)
            if bool(keep.any()):
                part = _select(batch, keep)
                labels = torch.unique(part.group_ids)
                if groups + len(labels) > target:  # trim to exactly a full batch
                    part = _select(part, torch.isin(part.group_ids, labels[: target - groups]))
                    labels = labels[: target - groups]
                kept.append(part)
                groups += len(labels)
            if groups >= target or rounds >= cfg.max_refill_rounds:
                break
            rounds += 1
            offset += target
            batch = self._sample_groups(source, target - groups, offset)
        if not kept:
            empty = _select(batch, torch.zeros_like(batch.rewards, dtype=torch.bool))
            return replace(empty, refill_rounds=rounds, completions_sampled=sampled)
        gen = Generation.concat([k.generation for k in kept], self.policy.tokenizer.pad_id)
        return GroupBatch(
            gen,
            torch.cat([k.rewards for k in kept]),
            torch.cat([k.raw_rewards for k in kept]),
            torch.cat([k.group_ids for k in kept]),
            rounds,
            sampled,
        )

    @torch.no_grad()
    def _logprobs(self, policy: LMPolicy, gen: Generation) -> Tensor:
        was = policy.training
        policy.eval()
        out = policy.generation_logprobs(gen)
        policy.train(was)
        return out

    def update(self, batch: GroupBatch) -> dict[str, float]:
        """The clipped group-relative update on ``batch``; returns loss statistics."""
        cfg = self.config
        gen = batch.generation
        n = len(gen.texts)
        if n == 0:
            return {"loss": 0.0, "clip_frac": 0.0, "kl_ref": 0.0, "updated": 0.0}
        device = gen.completion_ids.device
        adv = group_advantages(batch.rewards, batch.group_ids, scale=cfg.scale_advantages)
        adv = adv.to(device)
        mask = gen.completion_mask
        if cfg.overlong_filter:
            mask = mask & ~gen.truncated[:, None]
        old = self._logprobs(self.policy, gen)
        ref = self._logprobs(self.reference, gen) if cfg.kl_coef > 0 and self.reference else None
        losses, clips, kls = [], [], []
        self.policy.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(int(self.rng.integers(2**31)))
            )
            for rows in torch.chunk(order, cfg.minibatches):
                if len(rows) == 0:
                    continue
                mb = gen.select(rows.to(device))
                lp = self.policy.generation_logprobs(mb)
                m = mask[rows]
                loss = grouped_clip_loss(
                    lp,
                    old[rows],
                    adv[rows],
                    clip_low=cfg.clip_low,
                    clip_high=cfg.clip_high,
                    mask=m,
                    token_level=cfg.token_level,
                )
                w = m.to(lp.dtype)
                if ref is not None:
                    kl = (kl_to_reference(lp, ref[rows]) * w).sum() / w.sum().clamp_min(1.0)
                    loss = loss + cfg.kl_coef * kl
                    kls.append(float(kl.item()))
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    ratio = torch.exp(lp - old[rows])
                    high = cfg.clip_low if cfg.clip_high is None else cfg.clip_high
                    out = ((ratio < 1 - cfg.clip_low) | (ratio > 1 + high)) & m
                    clips.append(float(out.sum()) / max(float(m.sum()), 1.0))
                losses.append(float(loss.item()))
        self.policy.eval()
        return {
            "loss": float(np.mean(losses)) if losses else 0.0,
            "clip_frac": float(np.mean(clips)) if clips else 0.0,
            "kl_ref": float(np.mean(kls)) if kls else 0.0,
            "updated": 1.0,
        }

    def step(self, source: PromptSource) -> dict[str, float]:
        """Collect one batch and update on it; returns reward, batch and loss statistics."""
        start = time.perf_counter()
        batch = self.collect(source)
        collected = time.perf_counter()
        stats = self.update(batch)
        done = time.perf_counter()
        gen = batch.generation
        n = max(len(gen.texts), 1)
        return {
            "reward": float(batch.rewards.mean()) if len(gen.texts) else 0.0,
            "score": float(batch.raw_rewards.mean()) if len(gen.texts) else 0.0,
            "groups": float(len(torch.unique(batch.group_ids))),
            "refill_rounds": float(batch.refill_rounds),
            "completions_sampled": float(batch.completions_sampled),
            "truncated_frac": float(gen.truncated.sum()) / n,
            "mean_length": float(gen.lengths.float().mean()) if len(gen.texts) else 0.0,
            "collect_s": collected - start,
            "update_s": done - collected,
            **stats,
        }


def _select(batch: GroupBatch, keep: Tensor) -> GroupBatch:
    rows = keep.nonzero().flatten()
    return GroupBatch(
        batch.generation.select(rows.to(batch.generation.completion_ids.device)),
        batch.rewards[rows],
        batch.raw_rewards[rows],
        batch.group_ids[rows],
        batch.refill_rounds,
        batch.completions_sampled,
    )
