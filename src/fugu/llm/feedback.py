"""AI feedback: labellers that prefer one of two outputs, and preference data from them.

A labeller is any callable ``(prompt, a, b) -> p`` returning the probability that ``a`` is the
better completion (1.0: ``a``, 0.0: ``b``, 0.5: no preference). :class:`RuleLabeller` ranks by
a scoring function (a verifier, a heuristic); :class:`ModelLabeller` by a reward model;
:class:`LikelihoodLabeller` by a judge LM's normalised log-likelihood. :func:`label_pairs`
turns sampled pairs into a preference dataset for :func:`fugu.llm.reward.train_bradley_terry`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

from fugu.llm.policy import LMPolicy
from fugu.llm.reward import Preference, RewardModel

__all__ = [
    "Labeller",
    "LikelihoodLabeller",
    "ModelLabeller",
    "RuleLabeller",
    "label_pairs",
    "sample_pairs",
]


class Labeller(Protocol):
    """Prefers one of two completions of a prompt."""

    def __call__(self, prompt: str, a: str, b: str) -> float:
        """Probability that ``a`` is better than ``b``."""
        ...


class RuleLabeller:
    """Prefers the completion with the higher ``score(prompt, completion)``; ties are 0.5.

    Example:
        >>> shorter = RuleLabeller(lambda prompt, text: -len(text))
        >>> shorter("q", "ab", "abc"), shorter("q", "ab", "cd")
        (1.0, 0.5)
    """

    def __init__(self, score: Callable[[str, str], float]) -> None:
        self.score = score

    def __call__(self, prompt: str, a: str, b: str) -> float:
        sa, sb = self.score(prompt, a), self.score(prompt, b)
        return 1.0 if sa > sb else 0.0 if sa < sb else 0.5


class ModelLabeller:
    """Prefers by a reward model: ``sigmoid((r(a) - r(b)) / temperature)``."""

    def __init__(self, model: RewardModel, temperature: float = 1.0) -> None:
        self.model = model
        self.temperature = temperature

    def __call__(self, prompt: str, a: str, b: str) -> float:
        ra, rb = self.model.score([prompt, prompt], [a, b])
        return 1.0 / (1.0 + math.exp(-(ra - rb) / self.temperature))


class LikelihoodLabeller:
    """Prefers the completion a judge LM finds more likely (token-normalised log-likelihood)
    after ``template.format(prompt=prompt)`` (e.g. a principle followed by the prompt)."""

    def __init__(self, judge: LMPolicy, template: str = "{prompt}") -> None:
        self.judge = judge
        self.template = template

    def __call__(self, prompt: str, a: str, b: str) -> float:
        context = self.template.format(prompt=prompt)
        with torch.no_grad():
            scores = self.judge.score_actions([context], [[a, b]])[0]
        return float(torch.sigmoid(scores[0] - scores[1]))


def label_pairs(
    labeller: Labeller,
    prompts: Sequence[str],
    firsts: Sequence[str],
    seconds: Sequence[str],
    *,
    margin: float = 0.0,
) -> list[Preference]:
    """Preferences of ``labeller`` on each ``(prompt, first, second)``; pairs judged within
    ``margin`` of 0.5 (and identical pairs) are dropped."""
    out = []
    for prompt, a, b in zip(prompts, firsts, seconds):
        if a == b:
            continue
        p = labeller(prompt, a, b)
        if abs(p - 0.5) <= margin:
            continue
        out.append(Preference(prompt, a, b) if p > 0.5 else Preference(prompt, b, a))
    return out


def sample_pairs(
    policy: LMPolicy,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 8,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[list[str], list[str]]:
    """Two sampled completions of each prompt (the raw material of RLAIF)."""
    doubled = [p for p in prompts for _ in range(2)]
    gen = policy.generate(
        doubled, max_new_tokens=max_new_tokens, temperature=temperature, generator=generator
    )
    texts = np.array(gen.texts, dtype=object).reshape(-1, 2)
    return [str(t) for t in texts[:, 0]], [str(t) for t in texts[:, 1]]
