"""Log-probabilities, entropies and sampling for categorical and diagonal Gaussian policies.

Hand-written so the rollout hot path avoids ``torch.distributions`` overhead. Logits may hold
``-inf`` for masked (illegal) actions: log-probabilities and entropies stay finite for legal
actions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_sample",
    "categorical_sample_log_prob",
    "gaussian_entropy",
    "gaussian_log_prob",
    "gaussian_sample",
    "mask_logits",
]

_LOG_2PI = math.log(2.0 * math.pi)


def mask_logits(logits: Tensor, action_mask: Tensor) -> Tensor:
    """Set the logits of illegal actions (``action_mask`` false) to ``-inf``.

    Example:
        >>> mask_logits(torch.zeros(1, 2), torch.tensor([[True, False]])).tolist()
        [[0.0, -inf]]
    """
    return logits.masked_fill(~action_mask, float("-inf"))


def categorical_sample(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Sample one action per row by inverting the CDF with one uniform number per row.

    Args:
        logits: ``[B, n]`` unnormalised log-probabilities (``-inf`` for masked actions).
        generator: The source of randomness (seeded by the caller for reproducibility).

    Returns:
        ``[B]`` int64 actions.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> categorical_sample(torch.tensor([[0.0, float("-inf")]] * 3), g).tolist()
        [0, 0, 0]
    """
    probs = torch.softmax(logits.float(), dim=-1)
    cdf = probs.cumsum_(dim=-1)
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device, dtype=cdf.dtype)
    u = u * cdf[:, -1:]
    actions = (cdf <= u).sum(dim=-1)
    # Rounding can leave u above the last cumulative probability: clamp to a legal action.
    return torch.clamp_(actions, max=logits.shape[-1] - 1)


def categorical_sample_log_prob(
    logits: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Sample like :func:`categorical_sample` and return the samples' log-probabilities too.

    One ``log_softmax`` serves both (the rollout hot path).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> actions, logp = categorical_sample_log_prob(torch.zeros(2, 2), g)
        >>> logp.exp().tolist()
        [0.5, 0.5]
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    cdf = log_probs.exp().cumsum_(dim=-1)
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device, dtype=cdf.dtype)
    actions = (cdf <= u * cdf[:, -1:]).sum(dim=-1)
    actions = torch.clamp_(actions, max=logits.shape[-1] - 1)
    return actions, log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def categorical_log_prob(logits: Tensor, actions: Tensor) -> Tensor:
    """Log-probability of ``actions`` (``[B]``) under categorical ``logits`` (``[B, n]``).

    Example:
        >>> categorical_log_prob(torch.zeros(1, 4), torch.tensor([2])).exp().tolist()
        [0.25]
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    return log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """Entropy of each row of ``logits`` (``[B, n]``); masked ``-inf`` entries contribute 0.

    Example:
        >>> round(categorical_entropy(torch.zeros(1, 2)).item(), 6) == round(math.log(2), 6)
        True
        >>> categorical_entropy(torch.tensor([[0.0, float("-inf")]])).tolist() == [0.0]
        True
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    # Zero the -inf log-probabilities themselves (not the product): 0 * -inf in the product
    # would give NaN gradients even where its value is masked out.
    finite = torch.where(probs > 0, log_probs, torch.zeros_like(log_probs))
    return -(probs * finite).sum(dim=-1)


def gaussian_sample(
    mean: Tensor, log_std: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Sample ``mean + std * noise`` (diagonal Gaussian).

    Example:
        >>> gaussian_sample(torch.zeros(2, 1), torch.full((1,), -50.0)).abs().max().item() < 1e-9
        True
    """
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + log_std.exp() * noise


def gaussian_log_prob(mean: Tensor, log_std: Tensor, actions: Tensor) -> Tensor:
    """Log-density of ``actions`` under a diagonal Gaussian, summed over the last dim.

    Example:
        >>> round(gaussian_log_prob(torch.zeros(1, 1), torch.zeros(1), torch.zeros(1, 1)).item(), 4)
        -0.9189
    """
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * _LOG_2PI).sum(dim=-1)


def gaussian_entropy(log_std: Tensor, batch_shape: tuple[int, ...]) -> Tensor:
    """Entropy of a diagonal Gaussian with ``log_std`` (independent of the mean), per row.

    Example:
        >>> round(gaussian_entropy(torch.zeros(1), (2,))[0].item(), 4)
        1.4189
    """
    per_row = (log_std + 0.5 * (1.0 + _LOG_2PI)).sum(dim=-1)
    return per_row.expand(batch_shape)
