from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from fugu.llm.grpo import TokenGRPO, TokenGRPOConfig
from fugu.llm.policy import LMPolicy, build_tiny_lm
from fugu.llm.tasks import Problem
from fugu.llm.tokenizer import CharTokenizer
from fugu.ops.group import group_has_signal


def _source(rng: np.random.Generator, n: int) -> list[Problem]:
    return [Problem(f"q{int(k)}:", "7", "7") for k in rng.integers(0, 10, n)]


def _starts_with_seven(problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
    return [float(t.startswith("7")) for t in texts]


def _seven_rate(policy: LMPolicy, n: int = 256) -> float:
    g = torch.Generator().manual_seed(123)
    gen = policy.generate(["q3:"] * n, max_new_tokens=2, generator=g)
    return float(np.mean(_starts_with_seven([], gen.texts)))


def test_grpo_learns_a_trivial_token_task(tok: CharTokenizer) -> None:
    policy = build_tiny_lm(tok, n_layer=1, d_model=32, n_head=2, seed=0)
    before = _seven_rate(policy)
    config = TokenGRPOConfig(group_size=8, prompts_per_step=8, max_new_tokens=2, lr=1e-2)
    trainer = TokenGRPO(policy, _starts_with_seven, config, seed=0)
    for _ in range(15):
        trainer.step(_source)
    after = _seven_rate(policy)
    assert before < 0.1 and after > 0.5


def test_update_raises_likelihood_of_better_completions(tiny: LMPolicy) -> None:
    config = TokenGRPOConfig(group_size=8, prompts_per_step=4, max_new_tokens=4, lr=3e-3)
    trainer = TokenGRPO(tiny, lambda p, t: [float(len(s)) for s in t], config, seed=1)
    batch = trainer.collect(_source)
    adv_sign = torch.sign(batch.rewards - batch.rewards.mean())

    def score() -> float:
        with torch.no_grad():
            lp = tiny.generation_logprobs(batch.generation)
        seq = (lp * batch.generation.completion_mask).sum(-1)
        return float((seq * adv_sign).mean())

    before = score()
    trainer.update(batch)
    assert score() > before


def _half_signal(problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
    # prompts "q0:".."q4:" always score 0 (no signal); the others score by length
    return [0.0 if int(p.prompt[1]) < 5 else float(len(set(t))) for p, t in zip(problems, texts)]


def test_dynamic_sampling_refills_the_batch(tiny: LMPolicy) -> None:
    config = TokenGRPOConfig(
        group_size=4, prompts_per_step=8, max_new_tokens=4, dynamic_sampling=True
    )
    trainer = TokenGRPO(tiny, _half_signal, config, seed=0)
    batch = trainer.collect(_source)
    assert len(torch.unique(batch.group_ids)) == 8
    assert len(batch.generation.texts) == 8 * 4
    assert group_has_signal(batch.rewards, batch.group_ids).all()
    assert batch.refill_rounds >= 1 and batch.completions_sampled > 8 * 4
    metrics = trainer.step(_source)
    assert metrics["groups"] == 8.0 and metrics["updated"] == 1.0

    without = TokenGRPO(tiny, _half_signal, TokenGRPOConfig(group_size=4, prompts_per_step=8))
    plain = without.collect(_source)
    assert not group_has_signal(plain.rewards, plain.group_ids).all()

    capped = TokenGRPO(
        tiny,
        lambda p, t: [0.0] * len(t),
        TokenGRPOConfig(
            group_size=4, prompts_per_step=8, dynamic_sampling=True, max_refill_rounds=2
        ),
    )
    empty = capped.collect(_source)
    assert len(empty.generation.texts) == 0 and empty.refill_rounds == 2
    assert capped.update(empty)["updated"] == 0.0


def test_overlong_filter_and_soft_punishment(tiny: LMPolicy) -> None:
    config = TokenGRPOConfig(
        group_size=4,
        prompts_per_step=4,
        max_new_tokens=3,
        overlong_buffer=2,
        overlong_filter=True,
    )
    trainer = TokenGRPO(tiny, lambda p, t: [1.0] * len(t), config, seed=0)
    batch = trainer.collect(_source)
    gen = batch.generation
    assert gen.truncated.any()  # a random model rarely stops within 3 tokens
    assert torch.all(batch.rewards[gen.truncated] == 0.0)  # 1 - full punishment
    assert torch.all(batch.raw_rewards == 1.0)
    assert trainer.update(batch)["updated"] == 1.0


def test_kl_reference_and_dapo_preset(tiny: LMPolicy) -> None:
    dapo = TokenGRPOConfig.dapo(max_new_tokens=8)
    assert dapo.clip_high == 0.28 and dapo.token_level and dapo.dynamic_sampling
    assert dapo.overlong_filter and dapo.overlong_buffer == 2 and dapo.kl_coef == 0.0
    config = TokenGRPOConfig(
        group_size=4, prompts_per_step=4, max_new_tokens=3, kl_coef=0.1, lr=1e-2, minibatches=2
    )
    trainer = TokenGRPO(tiny, lambda p, t: [float(len(s)) for s in t], config, seed=0)
    assert trainer.reference is not None and trainer.reference is not tiny
    first = trainer.step(_source)
    second = trainer.step(_source)
    assert first["kl_ref"] >= 0.0 and second["kl_ref"] > 0.0
    with pytest.raises(ValueError):
        TokenGRPOConfig(group_size=1)
    with pytest.raises(ValueError):
        TokenGRPOConfig(max_new_tokens=4, overlong_buffer=5)


def test_grpo_is_seeded(tok: CharTokenizer) -> None:
    def run() -> tuple[list[dict[str, float]], list[torch.Tensor]]:
        policy = build_tiny_lm(tok, n_layer=1, d_model=16, n_head=2, seed=0)
        trainer = TokenGRPO(
            policy,
            _half_signal,
            TokenGRPOConfig.dapo(group_size=4, prompts_per_step=4, max_new_tokens=3),
            seed=3,
        )
        metrics = [trainer.step(_source) for _ in range(2)]
        for m in metrics:
            m.pop("collect_s"), m.pop("update_s")
        return metrics, [p.detach().clone() for p in policy.parameters()]

    (m1, p1), (m2, p2) = run(), run()
    assert m1 == m2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
