"""Preference data and Bradley-Terry reward models.

A :class:`Preference` is a prompt with a chosen and a rejected completion. A
:class:`RewardModel` scores ``prompt + completion`` with a scalar head on a causal LM's last
hidden state; :func:`train_bradley_terry` fits it by maximising ``log sigmoid(r(chosen) -
r(rejected))`` and reports the share of held-out pairs it orders correctly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from fugu.llm.policy import LMPolicy, TokenizerLike, build_tiny_lm
from fugu.llm.tasks import ArithmeticTask, Problem, Split

__all__ = [
    "BradleyTerryReport",
    "Preference",
    "RewardModel",
    "arithmetic_preferences",
    "bradley_terry_loss",
    "build_reward_model",
    "preference_accuracy",
    "train_bradley_terry",
]


@dataclass(frozen=True)
class Preference:
    """One labelled comparison."""

    prompt: str
    chosen: str
    rejected: str


class RewardModel(nn.Module):
    """A scalar reward of ``prompt + completion`` (an :class:`LMPolicy` with a value head, read
    at the last token)."""

    def __init__(self, backbone: LMPolicy) -> None:
        super().__init__()
        if backbone.value_head is None:
            raise ValueError("the reward model's backbone needs a value head")
        self.backbone = backbone

    def forward(self, prompts: Sequence[str], completions: Sequence[str]) -> Tensor:
        """``[B]`` rewards (differentiable)."""
        texts = [p + c for p, c in zip(prompts, completions)]
        ids, mask = self.backbone.encode_prompts(texts)
        eos = torch.full_like(ids[:, :1], self.backbone.tokenizer.eos_id)
        ids = torch.cat([ids, eos], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        return self.backbone.values(ids, mask)

    @torch.no_grad()
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        """Rewards as floats (no gradient)."""
        was = self.training
        self.eval()
        out = self(prompts, completions).tolist()
        self.train(was)
        return [float(v) for v in out]

    def reward_fn(self) -> Callable[[Sequence[Problem], Sequence[str]], list[float]]:
        """This model as a :data:`fugu.llm.grpo.RewardFn`."""

        def reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
            return self.score([p.prompt for p in problems], completions)

        return reward


def build_reward_model(
    tokenizer: TokenizerLike,
    *,
    n_layer: int = 2,
    d_model: int = 64,
    n_head: int = 4,
    max_positions: int = 64,
    seed: int = 0,
) -> RewardModel:
    """A tiny randomly initialised reward model (see :func:`fugu.llm.policy.build_tiny_lm`)."""
    backbone = build_tiny_lm(
        tokenizer,
        n_layer=n_layer,
        d_model=d_model,
        n_head=n_head,
        max_positions=max_positions,
        value_head=True,
        seed=seed,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        assert backbone.value_head is not None
        backbone.value_head.reset_parameters()
    return RewardModel(backbone)


def bradley_terry_loss(chosen: Tensor, rejected: Tensor) -> Tensor:
    """``-mean log sigmoid(r_chosen - r_rejected)``.

    Example:
        >>> round(bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item(), 4)
        0.6931
    """
    return -nn.functional.logsigmoid(chosen - rejected).mean()


@torch.no_grad()
def preference_accuracy(
    model: RewardModel, data: Sequence[Preference], batch_size: int = 256
) -> float:
    """Share of pairs whose chosen completion scores strictly higher."""
    if not data:
        return float("nan")
    right = 0
    for start in range(0, len(data), batch_size):
        chunk = data[start : start + batch_size]
        prompts = [d.prompt for d in chunk]
        c = torch.tensor(model.score(prompts, [d.chosen for d in chunk]))
        r = torch.tensor(model.score(prompts, [d.rejected for d in chunk]))
        right += int((c > r).sum())
    return right / len(data)


@dataclass(frozen=True)
class BradleyTerryReport:
    """What :func:`train_bradley_terry` returns."""

    losses: list[float]
    train_accuracy: float
    test_accuracy: float


def train_bradley_terry(
    model: RewardModel,
    train: Sequence[Preference],
    test: Sequence[Preference],
    *,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> BradleyTerryReport:
    """Fit ``model`` to ``train`` preferences; accuracy on ``train`` and held-out ``test``."""
    if not train:
        raise ValueError("no training preferences")
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        rows = rng.integers(0, len(train), min(batch_size, len(train)))
        chunk = [train[int(i)] for i in rows]
        prompts = [d.prompt for d in chunk]
        both = model(prompts + prompts, [d.chosen for d in chunk] + [d.rejected for d in chunk])
        loss = bradley_terry_loss(both[: len(chunk)], both[len(chunk) :])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.item()))
        if callback is not None:
            callback(step, losses[-1])
    model.eval()
    return BradleyTerryReport(
        losses, preference_accuracy(model, train[:1000]), preference_accuracy(model, test)
    )


def arithmetic_preferences(
    task: ArithmeticTask, rng: np.random.Generator, n: int, split: Split = "train"
) -> list[Preference]:
    """Synthetic preferences: the correct result chosen over a wrong one (off by 1 to 10)."""
    out = []
    for problem in task.sample(rng, n, split):
        value = int(problem.answer)
        offset = int(rng.integers(1, 11)) * (1 if rng.random() < 0.5 else -1)
        wrong = value + offset if value + offset >= 0 else value + abs(offset)
        out.append(Preference(problem.prompt, problem.answer, str(wrong)))
    return out
