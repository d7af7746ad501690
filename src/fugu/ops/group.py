"""Group-relative policy optimisation math (GRPO and DAPO), as pure torch functions.

GRPO scores each sample against the other members of its group (the G rollouts from one seed,
or the G completions of one prompt) instead of against a learned critic. DAPO's switches are
arguments here: a decoupled (asymmetric) clip range, token-level loss averaging, and the
overlong punishment of sequences that run past their budget. Both the env-side algorithm
(``fugu.algos.grpo``) and the language-model toolkit (``fugu.llm``) use these functions.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "group_advantages",
    "group_has_signal",
    "grouped_clip_loss",
    "kl_to_reference",
    "soft_overlong_penalty",
]


def group_advantages(
    rewards: Tensor, group_ids: Tensor, *, scale: bool = True, eps: float = 1e-6
) -> Tensor:
    """Each reward minus its group's mean, divided by the group's std when ``scale``.

    Args:
        rewards: ``[N]`` one scalar outcome per sample (an episode return, a completion's score).
        group_ids: ``[N]`` integer group of each sample (any labels; need not be contiguous).
        scale: divide by the group's (population) standard deviation, as GRPO; ``False`` keeps
            only the centring (Dr. GRPO's unbiased variant).
        eps: added to the standard deviation; a group whose rewards are all equal gets zeros.

    Example:
        >>> r = torch.tensor([1.0, 0.0, 2.0, 2.0])
        >>> group_advantages(r, torch.tensor([0, 0, 1, 1])).round(decimals=4).tolist()
        [1.0, -1.0, 0.0, 0.0]
    """
    if rewards.shape != group_ids.shape or rewards.dim() != 1:
        raise ValueError(
            f"rewards and group_ids must both be [N], got {tuple(rewards.shape)} and "
            f"{tuple(group_ids.shape)}"
        )
    _, inverse = torch.unique(group_ids, return_inverse=True)
    num_groups = int(inverse.max().item()) + 1 if inverse.numel() else 0
    rewards = rewards.to(torch.float64)
    counts = torch.zeros(num_groups, dtype=torch.float64).index_add_(
        0, inverse, torch.ones_like(rewards)
    )
    sums = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, rewards)
    means = sums / counts
    centred = rewards - means[inverse]
    if not scale:
        return centred.to(torch.float32)
    squares = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, centred**2)
    stds = torch.sqrt(squares / counts)
    return (centred / (stds[inverse] + eps)).to(torch.float32)


def group_has_signal(rewards: Tensor, group_ids: Tensor, atol: float = 1e-8) -> Tensor:
    """``[N]`` bool: whether the sample's group holds at least two different rewards.

    DAPO's dynamic sampling keeps only these samples (a group whose members all scored the same
    has zero advantage everywhere and contributes no gradient).

    Example:
        >>> group_has_signal(torch.tensor([1.0, 0.0, 2.0, 2.0]), torch.tensor([0, 0, 1, 1]))
        tensor([ True,  True, False, False])
    """
    _, inverse = torch.unique(group_ids, return_inverse=True)
    num_groups = int(inverse.max().item()) + 1 if inverse.numel() else 0
    highs = torch.full((num_groups,), -torch.inf, dtype=rewards.dtype).scatter_reduce(
        0, inverse, rewards, reduce="amax"
    )
    lows = torch.full((num_groups,), torch.inf, dtype=rewards.dtype).scatter_reduce(
        0, inverse, rewards, reduce="amin"
    )
    return (highs - lows)[inverse] > atol


def grouped_clip_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float | None = None,
    mask: Tensor | None = None,
    token_level: bool = False,
) -> Tensor:
    """The clipped surrogate with a decoupled clip range, averaged per token or per sequence.

    ``ratio`` is clipped to ``[1 - clip_low, 1 + clip_high]`` (``clip_high`` defaults to
    ``clip_low``: PPO's symmetric clip; DAPO's clip-higher uses e.g. 0.2 / 0.28).

    Args:
        logprobs: ``[N]`` per-sample or ``[N, T]`` per-token log-probabilities (new policy).
        old_logprobs: the same shape, under the policy that sampled.
        advantages: ``[N]`` (broadcast over tokens) or the same shape as ``logprobs``.
        clip_low: lower clip width.
        clip_high: upper clip width (``None``: ``clip_low``).
        mask: ``[N, T]`` bool, the tokens that count (padding and filtered sequences False).
        token_level: average over all valid tokens of the batch (DAPO), instead of a mean over
            each sequence's tokens followed by a mean over sequences (GRPO).

    Example:
        >>> lp = torch.log(torch.tensor([[1.5, 1.0], [0.5, 1.0]]))
        >>> adv = torch.tensor([1.0, -1.0])
        >>> m = torch.tensor([[True, True], [True, False]])
        >>> round(grouped_clip_loss(lp, torch.zeros(2, 2), adv, mask=m).item(), 4)
        -0.15
        >>> round(grouped_clip_loss(lp, torch.zeros(2, 2), adv, mask=m, token_level=True).item(), 4)
        -0.4667
    """
    high = clip_low if clip_high is None else clip_high
    if advantages.dim() < logprobs.dim():
        advantages = advantages.reshape(advantages.shape + (1,) * (logprobs.dim() - 1))
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    if mask is None:
        return per_token.mean()
    weights = mask.to(per_token.dtype)
    if token_level or per_token.dim() == 1:
        return (per_token * weights).sum() / weights.sum().clamp_min(1.0)
    per_sequence = (per_token * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)
    has_tokens = (weights.sum(-1) > 0).to(per_token.dtype)
    return (per_sequence * has_tokens).sum() / has_tokens.sum().clamp_min(1.0)


def kl_to_reference(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-sample (or per-token) unbiased, non-negative estimate of ``KL(policy || reference)``.

    ``exp(ref - lp) - (ref - lp) - 1`` (Schulman's k3 estimator), the penalty GRPO adds.

    Example:
        >>> kl_to_reference(torch.zeros(2), torch.zeros(2)).tolist()
        [0.0, 0.0]
    """
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


def soft_overlong_penalty(lengths: Tensor, max_length: int, buffer: int) -> Tensor:
    """DAPO's soft overlong punishment: 0 up to ``max_length - buffer``, then falling linearly
    to -1 at ``max_length`` (and -1 beyond).

    Example:
        >>> soft_overlong_penalty(torch.tensor([4, 8, 10, 12]), max_length=12, buffer=4).tolist()
        [0.0, 0.0, -0.5, -1.0]
    """
    if buffer <= 0 or buffer > max_length:
        raise ValueError(f"buffer must be in 1..max_length ({max_length}), got {buffer}")
    over = (lengths.to(torch.float32) - (max_length - buffer)) / buffer
    return 0.0 - over.clamp(0.0, 1.0)
