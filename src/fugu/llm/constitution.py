"""Constitutional principles: written rules as reward penalties and critique-and-revise.

A :class:`Principle` is a sentence (what a good output does) with a judge that decides whether
a completion violates it: a rule (:func:`regex_principle`, :func:`max_length_principle`) or a
model (:func:`labeller_principle`: a labeller compares the completion with the principle's
exemplar). A :class:`Constitution` turns its principles into a reward penalty
(:meth:`Constitution.penalized`), logs per-principle violation rates, and runs the
critique-and-revise step (:func:`critique_and_revise`): each violated principle is a critique,
the policy resamples, and the revision with the fewest (weighted) violations is kept; the
revisions are SFT targets (the supervised stage of constitutional AI).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from fugu.llm.feedback import Labeller
from fugu.llm.policy import LMPolicy
from fugu.llm.tasks import Problem

__all__ = [
    "Constitution",
    "Principle",
    "Revision",
    "critique_and_revise",
    "labeller_principle",
    "max_length_principle",
    "regex_principle",
]

#: ``(prompt, completion) -> violated``
Judge = Callable[[str, str], bool]


@dataclass(frozen=True)
class Principle:
    """A written principle and its judge.

    Attributes:
        name: short key for logs.
        text: the principle as written (used as the critique when violated).
        violated: the judge.
        weight: reward penalty per violation.
    """

    name: str
    text: str
    violated: Judge
    weight: float = 1.0


def regex_principle(name: str, text: str, pattern: str, weight: float = 1.0) -> Principle:
    """Violated when the completion does not fully match ``pattern``.

    Example:
        >>> p = regex_principle("digits", "Answer with digits only.", r"[0-9]+")
        >>> p.violated("1+1=", "2"), p.violated("1+1=", "two")
        (False, True)
    """
    compiled = re.compile(pattern)
    return Principle(name, text, lambda _p, c: compiled.fullmatch(c.strip()) is None, weight)


def max_length_principle(name: str, text: str, max_chars: int, weight: float = 1.0) -> Principle:
    """Violated when the completion is longer than ``max_chars`` characters."""
    return Principle(name, text, lambda _p, c: len(c) > max_chars, weight)


def labeller_principle(
    name: str, text: str, labeller: Labeller, exemplar: Callable[[str], str], weight: float = 1.0
) -> Principle:
    """A model-judged principle: violated when ``labeller`` prefers the principle's exemplar
    output (``exemplar(prompt)``) over the completion."""

    def violated(prompt: str, completion: str) -> bool:
        return labeller(prompt, completion, exemplar(prompt)) < 0.5

    return Principle(name, text, violated, weight)


class Constitution:
    """A set of principles with running violation counts."""

    def __init__(self, principles: Sequence[Principle]) -> None:
        names = [p.name for p in principles]
        if len(set(names)) != len(names):
            raise ValueError(f"principle names must be unique, got {names}")
        self.principles = list(principles)
        self.reset_counts()

    def reset_counts(self) -> None:
        """Forget the violation counts."""
        self.counts = {p.name: 0 for p in self.principles}
        self.judged = 0

    def violations(
        self, prompts: Sequence[str], completions: Sequence[str]
    ) -> dict[str, list[bool]]:
        """Per principle, whether each completion violates it (counted in :meth:`rates`)."""
        out = {
            p.name: [bool(p.violated(q, c)) for q, c in zip(prompts, completions)]
            for p in self.principles
        }
        for name, flags in out.items():
            self.counts[name] += sum(flags)
        self.judged += len(completions)
        return out

    def penalties(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        """The summed weights of the violated principles of each completion."""
        flags = self.violations(prompts, completions)
        return [
            sum(p.weight for p in self.principles if flags[p.name][i])
            for i in range(len(completions))
        ]

    def rates(self) -> dict[str, float]:
        """Violation rate of each principle over everything judged since the last reset."""
        return {name: n / max(self.judged, 1) for name, n in self.counts.items()}

    def penalized(
        self, reward_fn: Callable[[Sequence[Problem], Sequence[str]], Sequence[float]]
    ) -> Callable[[Sequence[Problem], Sequence[str]], list[float]]:
        """``reward_fn`` minus the principles' penalties (a :data:`fugu.llm.grpo.RewardFn`)."""

        def reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
            base = reward_fn(problems, completions)
            pen = self.penalties([p.prompt for p in problems], completions)
            return [float(r) - q for r, q in zip(base, pen)]

        return reward


@dataclass(frozen=True)
class Revision:
    """One critique-and-revise outcome."""

    prompt: str
    original: str
    critiques: list[str]
    revised: str
    violations_before: float
    violations_after: float


def critique_and_revise(
    policy: LMPolicy,
    constitution: Constitution,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    candidates: int = 4,
    template: str = "{prompt}",
    max_new_tokens: int = 8,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[Revision]:
    """Critique each completion against every principle and revise the violating ones.

    The critiques are the texts of the violated principles; ``template`` (with ``{prompt}`` and
    ``{critique}``) builds the revision prompt, so a capable model can read the critique (a
    tiny model from scratch uses the default, the prompt alone). Among ``candidates`` sampled
    revisions, the one with the lowest weighted violations is kept, and only when it is better
    than the original.
    """
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    weights = {p.name: p.weight for p in constitution.principles}

    def weighted(flags: dict[str, list[bool]], i: int) -> float:
        return sum(weights[n] for n, f in flags.items() if f[i])

    before = constitution.violations(prompts, completions)
    out: list[Revision] = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions)):
        critiques = [p.text for p in constitution.principles if before[p.name][i]]
        score = weighted(before, i)
        if not critiques:
            out.append(Revision(prompt, completion, [], completion, 0.0, 0.0))
            continue
        context = template.format(prompt=prompt, critique=" ".join(critiques))
        gen = policy.generate(
            [context] * candidates,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            generator=generator,
        )
        flags = constitution.violations([prompt] * candidates, gen.texts)
        scores = [weighted(flags, j) for j in range(candidates)]
        best = min(range(candidates), key=lambda j: scores[j])
        revised, after = (
            (gen.texts[best], scores[best]) if scores[best] < score else (completion, score)
        )
        out.append(Revision(prompt, completion, critiques, revised, score, after))
    return out
