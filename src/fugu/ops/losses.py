"""PPO losses and the statistics logged beside them (pure torch functions)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "masked_center",
    "masked_standardize",
    "normalize_advantages",
    "ppo_policy_loss",
    "ppo_value_loss",
]


def normalize_advantages(advantages: Tensor, eps: float = 1e-8) -> Tensor:
    """Shift and scale advantages to zero mean and unit standard deviation.

    A single advantage is only centred (its standard deviation is undefined).

    Example:
        >>> normalize_advantages(torch.tensor([1.0, 3.0])).tolist()
        [-0.7071067690849304, 0.7071067690849304]
    """
    centred = advantages - advantages.mean()
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + eps)


def ppo_policy_loss(
    logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, clip_coef: float
) -> Tensor:
    """PPO's clipped surrogate objective, as a loss to minimise.

    ``-mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))`` with
    ``ratio = exp(logprobs - old_logprobs)``.

    Example:
        >>> lp = torch.log(torch.tensor([1.5, 0.5]))
        >>> ppo_policy_loss(lp, torch.zeros(2), torch.tensor([1.0, 1.0]), 0.2).item()
        -0.8500000238418579
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages
    return -torch.min(unclipped, clipped).mean()


def ppo_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, clip_coef: float | None
) -> Tensor:
    """Half mean squared error to the returns, optionally clipped around the old values.

    With ``clip_coef`` the loss is ``0.5 * mean(max((v - R)^2, (v_clip - R)^2))`` where
    ``v_clip = old + clip(v - old, -clip_coef, clip_coef)``; without, ``0.5 * mean((v - R)^2)``.

    Example:
        >>> ppo_value_loss(torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([0.0]), None)
        tensor(2.)
        >>> ppo_value_loss(torch.tensor([0.5]), torch.tensor([0.0]), torch.tensor([2.0]), 0.2)
        tensor(1.6200)
    """
    unclipped = (values - returns) ** 2
    if clip_coef is None:
        return 0.5 * unclipped.mean()
    clipped_values = old_values + torch.clamp(values - old_values, -clip_coef, clip_coef)
    clipped = (clipped_values - returns) ** 2
    return 0.5 * torch.max(unclipped, clipped).mean()


def approx_kl(logratio: Tensor) -> Tensor:
    """Low-variance estimate of ``KL(old || new)``: ``mean((ratio - 1) - log ratio)``.

    Example:
        >>> approx_kl(torch.zeros(3)).item()
        0.0
    """
    return (torch.exp(logratio) - 1.0 - logratio).mean()


def clip_fraction(logratio: Tensor, clip_coef: float) -> Tensor:
    """Fraction of samples whose ratio left ``[1 - clip_coef, 1 + clip_coef]``.

    Example:
        >>> clip_fraction(torch.log(torch.tensor([1.0, 1.5])), 0.2).item()
        0.5
    """
    return ((torch.exp(logratio) - 1.0).abs() > clip_coef).float().mean()


def explained_variance(values: Tensor, returns: Tensor) -> Tensor:
    """``1 - Var(returns - values) / Var(returns)``; NaN when the returns are constant.

    Example:
        >>> explained_variance(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])).item()
        1.0
    """
    var = returns.var()
    return 1.0 - (returns - values).var() / var


def masked_standardize(values: Tensor, masks: Tensor | None) -> Tensor:
    """``values`` standardised (mean 0, std 1) over the live entries (``masks`` true; every
    entry when ``None``)."""
    if masks is None or bool(masks.all()):
        return (values - values.mean()) / (values.std() + 1e-8)
    live = values[masks]
    return (values - live.mean()) / (live.std() + 1e-8)


def masked_center(values: Tensor, masks: Tensor | None) -> Tensor:
    """``values`` minus their mean over the live entries.

    Example:
        >>> masked_center(torch.tensor([1.0, 3.0, 9.0]), torch.tensor([True, True, False]))
        tensor([-1.,  1.,  7.])
    """
    if masks is None or bool(masks.all()):
        return values - values.mean()
    return values - values[masks].mean()
