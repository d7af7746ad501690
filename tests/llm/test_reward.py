from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.llm.constitution import (
    Constitution,
    critique_and_revise,
    labeller_principle,
    max_length_principle,
    regex_principle,
)
from fugu.llm.feedback import LikelihoodLabeller, ModelLabeller, RuleLabeller, label_pairs
from fugu.llm.grpo import TokenGRPOConfig
from fugu.llm.policy import LMPolicy, build_tiny_lm
from fugu.llm.reward import (
    Preference,
    arithmetic_preferences,
    build_reward_model,
    train_bradley_terry,
)
from fugu.llm.rlhf import RLAIFConfig, train_rlaif
from fugu.llm.tasks import ArithmeticTask, Problem
from fugu.llm.tokenizer import CharTokenizer


def _sevens(rng: np.random.Generator, n: int, split: str = "train") -> list[Preference]:
    # chosen completions hold more 7s than rejected ones
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        noise = "".join(str(d) for d in rng.integers(0, 7, 2))
        out.append(Preference(f"q{int(rng.integers(10))}:", "7" * k + noise, noise))
    return out


def test_bradley_terry_learns_a_synthetic_preference(tok: CharTokenizer) -> None:
    rng = np.random.default_rng(0)
    train, test = _sevens(rng, 400), _sevens(rng, 100)
    model = build_reward_model(tok, n_layer=1, d_model=32, n_head=2, seed=0)
    report = train_bradley_terry(model, train, test, steps=60, lr=3e-3, seed=0)
    assert report.losses[-1] < report.losses[0]
    assert report.test_accuracy > 0.9
    with pytest.raises(ValueError):
        train_bradley_terry(model, [], test)


def test_arithmetic_preferences_are_correct_over_wrong() -> None:
    task = ArithmeticTask(max_digits=1)
    prefs = arithmetic_preferences(task, np.random.default_rng(1), 50)
    problems = {p.prompt: p for p in task.problems("train") + task.problems("test")}
    for d in prefs:
        assert task.verify(problems[d.prompt], d.chosen) == 1.0
        assert task.verify(problems[d.prompt], d.rejected) == 0.0


def test_labellers_and_label_pairs(tok: CharTokenizer, tiny: LMPolicy) -> None:
    task = ArithmeticTask(max_digits=1)
    verifier = RuleLabeller(lambda prompt, text: task.verify(Problem(prompt, "5", ""), text))
    assert verifier("2+3=", "5", "6") == 1.0 and verifier("2+3=", "6", "5") == 0.0
    data = label_pairs(verifier, ["2+3="] * 3, ["5", "6", "7"], ["6", "5", "8"])
    assert [(d.chosen, d.rejected) for d in data] == [("5", "6"), ("5", "6")]  # tie dropped

    rm = build_reward_model(tok, n_layer=1, d_model=16, n_head=2)
    by_model = ModelLabeller(rm)
    p = by_model("q", "a", "b")
    assert 0.0 < p < 1.0 and abs(by_model("q", "b", "a") - (1 - p)) < 1e-5
    judge = LikelihoodLabeller(tiny)
    q = judge("q", "a", "bb")
    assert 0.0 < q < 1.0 and abs(judge("q", "bb", "a") - (1 - q)) < 1e-5
    assert label_pairs(judge, ["q"], ["a"], ["a"]) == []


def test_principle_penalties_and_rates() -> None:
    digits = regex_principle("digits", "Answer with digits only.", r"[0-9]+", weight=1.0)
    short = max_length_principle("short", "Be brief.", 2, weight=0.5)
    constitution = Constitution([digits, short])
    prompts = ["1+1="] * 4
    completions = ["2", "abc", "123", "x"]
    assert constitution.penalties(prompts, completions) == [0.0, 1.5, 0.5, 1.0]
    assert constitution.rates() == {"digits": 0.5, "short": 0.5}
    reward = constitution.penalized(lambda p, c: [1.0] * len(c))
    assert reward([Problem("1+1=", "2", "2")] * 2, ["2", "abc"]) == [1.0, -0.5]
    constitution.reset_counts()
    assert constitution.rates() == {"digits": 0.0, "short": 0.0}
    with pytest.raises(ValueError):
        Constitution([digits, digits])


def test_model_judged_principle() -> None:
    labeller = RuleLabeller(lambda prompt, text: -len(text))
    brief = labeller_principle("brief", "No longer than the exemplar.", labeller, lambda p: "ab")
    assert not brief.violated("q", "a") and brief.violated("q", "abc")


def test_critique_and_revise_reduces_violations(tiny: LMPolicy) -> None:
    # a random model's outputs mostly break "digits only"; revisions keep the best candidate
    constitution = Constitution([regex_principle("digits", "Digits only.", r"[0-9]*")])
    g = torch.Generator().manual_seed(0)
    prompts = ["1+1="] * 6
    originals = tiny.generate(prompts, max_new_tokens=1, generator=g).texts
    revisions = critique_and_revise(
        tiny, constitution, prompts, originals, candidates=64, max_new_tokens=1, generator=g
    )
    before = sum(r.violations_before for r in revisions)
    after = sum(r.violations_after for r in revisions)
    assert before > 0 and after < before
    for r in revisions:
        assert r.violations_after <= r.violations_before
        assert (r.critiques == ["Digits only."]) == (r.violations_before > 0)


def test_rlaif_raises_the_labellers_preference(tok: CharTokenizer) -> None:
    policy = build_tiny_lm(tok, n_layer=1, d_model=32, n_head=2, seed=0)
    labeller = RuleLabeller(lambda prompt, text: float(sum(ch.isdigit() for ch in text)))

    def source(rng: np.random.Generator, n: int) -> list[Problem]:
        return [Problem(f"q{int(k)}:", "", "") for k in rng.integers(0, 10, n)]

    def digits(p: LMPolicy) -> float:
        g = torch.Generator().manual_seed(5)
        texts = p.generate(["q1:"] * 256, max_new_tokens=3, generator=g).texts
        return float(np.mean([sum(ch.isdigit() for ch in t) for t in texts]))

    rm = build_reward_model(tok, n_layer=1, d_model=32, n_head=2, seed=1)
    constitution = Constitution([max_length_principle("short", "Be brief.", 3, weight=0.1)])
    before = digits(policy)
    config = RLAIFConfig(
        prompts=256,
        rm_steps=80,
        rm_lr=3e-3,
        grpo_steps=12,
        grpo=TokenGRPOConfig(group_size=8, prompts_per_step=8, max_new_tokens=3, lr=1e-2),
    )
    report = train_rlaif(policy, source, labeller, rm, config, constitution=constitution)
    assert report.preferences > 20 and report.rm_test_accuracy > 0.7
    assert set(report.violation_rates) == {"short"}
    assert digits(policy) > 2 * before
