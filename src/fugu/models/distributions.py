"""Action distributions per action space, without ``torch.distributions`` in the hot path.

A distribution is stateless: a policy head produces its parameters (``DistParams``) and the
distribution samples, scores and measures them. Discrete and MultiDiscrete parameters are
logits (``[B, n]`` and ``[B, sum(nvec)]``); Box parameters are ``(mean [B, *shape], log_std
[*shape])`` with a state-independent ``log_std``.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from fugu.core.errors import APIUsageError
from fugu.ops import distributions as D

__all__ = [
    "ActionDistribution",
    "CategoricalDistribution",
    "DistParams",
    "GaussianDistribution",
    "MultiCategoricalDistribution",
    "make_distribution",
]

DistParams = Tensor | tuple[Tensor, Tensor]
"""Logits for discrete spaces, ``(mean, log_std)`` for Box."""


class ActionDistribution:
    """Base class: sample, log-probability and entropy of actions from parameters."""

    num_params: int
    """Width of the policy head output."""
    action_shape: tuple[int, ...]
    """Shape of one action (``()`` for Discrete)."""

    def sample(self, params: DistParams, generator: torch.Generator | None = None) -> Tensor:
        """Draw one action per row."""
        raise NotImplementedError

    def log_prob(self, params: DistParams, actions: Tensor) -> Tensor:
        """``[B]`` log-probabilities of ``actions``."""
        raise NotImplementedError

    def sample_with_log_prob(
        self, params: DistParams, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(actions, log_prob(actions))`` in one go (fused where it saves work)."""
        actions = self.sample(params, generator)
        return actions, self.log_prob(params, actions)

    def entropy(self, params: DistParams) -> Tensor:
        """``[B]`` entropies."""
        raise NotImplementedError

    def mask(self, params: DistParams, action_mask: Tensor) -> DistParams:
        """Forbid illegal actions (``action_mask`` false): their logits become ``-inf``."""
        raise APIUsageError(f"{type(self).__name__} does not support action masks")

    def mode(self, params: DistParams) -> Tensor:
        """The most likely action per row (for deterministic evaluation)."""
        raise NotImplementedError

    def kl(self, params: DistParams, other: DistParams) -> Tensor:
        """``[B]`` KL divergences ``KL(params || other)`` (trust-region methods)."""
        raise NotImplementedError


class CategoricalDistribution(ActionDistribution):
    """Discrete(n): one categorical per row.

    Example:
        >>> d = CategoricalDistribution(3)
        >>> logits = torch.zeros(2, 3)
        >>> d.sample(logits, torch.Generator().manual_seed(0)).shape
        torch.Size([2])
        >>> d.mode(d.mask(logits, torch.tensor([[False, False, True]] * 2))).tolist()
        [2, 2]
    """

    def __init__(self, n: int) -> None:
        self.num_params = int(n)
        self.action_shape = ()

    def sample(self, params: DistParams, generator: torch.Generator | None = None) -> Tensor:
        """Draw one action per row (inverse-CDF, one uniform number per row)."""
        return D.categorical_sample(_logits(params), generator)

    def log_prob(self, params: DistParams, actions: Tensor) -> Tensor:
        """``[B]`` log-probabilities."""
        return D.categorical_log_prob(_logits(params), actions)

    def sample_with_log_prob(
        self, params: DistParams, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Sample and score with one ``log_softmax``."""
        return D.categorical_sample_log_prob(_logits(params), generator)

    def entropy(self, params: DistParams) -> Tensor:
        """``[B]`` entropies (masked actions contribute nothing)."""
        return D.categorical_entropy(_logits(params))

    def mask(self, params: DistParams, action_mask: Tensor) -> DistParams:
        """Set illegal logits to ``-inf``; ``action_mask`` is ``[B, n]`` bool."""
        return D.mask_logits(_logits(params), action_mask.bool())

    def mode(self, params: DistParams) -> Tensor:
        """Argmax action per row."""
        return _logits(params).argmax(dim=-1)

    def kl(self, params: DistParams, other: DistParams) -> Tensor:
        """``[B]`` ``KL(params || other)`` (actions impossible under ``params`` add nothing)."""
        return _categorical_kl(_logits(params), _logits(other))


class MultiCategoricalDistribution(ActionDistribution):
    """MultiDiscrete(nvec): independent categoricals, logits concatenated along the last dim.

    Example:
        >>> d = MultiCategoricalDistribution([2, 3])
        >>> logits = torch.zeros(4, 5)
        >>> d.sample(logits, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 2])
        >>> round(d.entropy(logits)[0].item(), 4)  # log 2 + log 3
        1.7918
    """

    def __init__(self, nvec: np.ndarray | list[int]) -> None:
        self.nvec = [int(n) for n in np.asarray(nvec).reshape(-1)]
        self.num_params = sum(self.nvec)
        self.action_shape = (len(self.nvec),)
        self._uniform = len(set(self.nvec)) == 1

    def _split(self, logits: Tensor) -> tuple[Tensor, ...]:
        return torch.split(logits, self.nvec, dim=-1)

    def sample(self, params: DistParams, generator: torch.Generator | None = None) -> Tensor:
        """Draw one action per component and row: ``[B, len(nvec)]``."""
        logits = _logits(params)
        if self._uniform:
            k, n = len(self.nvec), self.nvec[0]
            flat = D.categorical_sample(logits.reshape(-1, n), generator)
            return flat.reshape(-1, k)
        parts = [D.categorical_sample(part, generator) for part in self._split(logits)]
        return torch.stack(parts, dim=-1)

    def log_prob(self, params: DistParams, actions: Tensor) -> Tensor:
        """``[B]`` log-probabilities, summed over components."""
        parts = self._split(_logits(params))
        return sum(  # type: ignore[return-value]
            D.categorical_log_prob(p, actions[..., i]) for i, p in enumerate(parts)
        )

    def entropy(self, params: DistParams) -> Tensor:
        """``[B]`` entropies, summed over components."""
        return sum(D.categorical_entropy(p) for p in self._split(_logits(params)))  # type: ignore[return-value]

    def mask(self, params: DistParams, action_mask: Tensor) -> DistParams:
        """Set illegal logits to ``-inf``; ``action_mask`` is ``[B, sum(nvec)]`` bool."""
        return D.mask_logits(_logits(params), action_mask.bool())

    def mode(self, params: DistParams) -> Tensor:
        """Argmax per component."""
        return torch.stack([p.argmax(dim=-1) for p in self._split(_logits(params))], dim=-1)

    def kl(self, params: DistParams, other: DistParams) -> Tensor:
        """``[B]`` KL divergences, summed over components."""
        pairs = zip(self._split(_logits(params)), self._split(_logits(other)))
        return sum(_categorical_kl(p, q) for p, q in pairs)  # type: ignore[return-value]


class GaussianDistribution(ActionDistribution):
    """Box: diagonal Gaussian with a state-independent log standard deviation.

    Example:
        >>> d = GaussianDistribution((2,))
        >>> params = (torch.zeros(3, 2), torch.zeros(2))
        >>> d.sample(params, torch.Generator().manual_seed(0)).shape
        torch.Size([3, 2])
        >>> d.entropy(params).shape
        torch.Size([3])
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.action_shape = tuple(int(s) for s in shape)
        self.num_params = int(np.prod(self.action_shape))

    def sample(self, params: DistParams, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``mean + std * noise``."""
        mean, log_std = _gaussian(params)
        return D.gaussian_sample(mean, log_std, generator).reshape(-1, *self.action_shape)

    def log_prob(self, params: DistParams, actions: Tensor) -> Tensor:
        """``[B]`` log-densities, summed over action dims."""
        mean, log_std = _gaussian(params)
        return D.gaussian_log_prob(mean, log_std, actions.reshape(mean.shape).to(mean.dtype))

    def entropy(self, params: DistParams) -> Tensor:
        """``[B]`` entropies."""
        mean, log_std = _gaussian(params)
        return D.gaussian_entropy(log_std, (mean.shape[0],))

    def mode(self, params: DistParams) -> Tensor:
        """The mean."""
        return _gaussian(params)[0].reshape(-1, *self.action_shape)

    def kl(self, params: DistParams, other: DistParams) -> Tensor:
        """``[B]`` KL divergences of diagonal Gaussians, summed over action dims."""
        mean_p, log_std_p = _gaussian(params)
        mean_q, log_std_q = _gaussian(other)
        var_p, var_q = torch.exp(2.0 * log_std_p), torch.exp(2.0 * log_std_q)
        per_dim = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2.0 * var_q) - 0.5
        return per_dim.sum(dim=-1)


def _categorical_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    logp = torch.log_softmax(logits_p, dim=-1)
    logq = torch.log_softmax(logits_q, dim=-1)
    p = logp.exp()
    terms = torch.where(p > 0, p * (logp - logq), torch.zeros_like(p))
    return terms.sum(dim=-1)


def _logits(params: DistParams) -> Tensor:
    if isinstance(params, tuple):
        raise APIUsageError("a categorical distribution takes logits, not (mean, log_std)")
    return params


def _gaussian(params: DistParams) -> tuple[Tensor, Tensor]:
    if not isinstance(params, tuple):
        raise APIUsageError("a Gaussian distribution takes (mean, log_std), not logits")
    mean, log_std = params
    return mean.reshape(mean.shape[0], -1), log_std.reshape(-1)


def make_distribution(action_space: spaces.Space) -> ActionDistribution:
    """The distribution matching a single action space.

    Example:
        >>> type(make_distribution(spaces.Discrete(4))).__name__
        'CategoricalDistribution'
    """
    if isinstance(action_space, spaces.Discrete):
        return CategoricalDistribution(int(action_space.n))
    if isinstance(action_space, spaces.MultiDiscrete):
        return MultiCategoricalDistribution(action_space.nvec)
    if isinstance(action_space, spaces.Box):
        return GaussianDistribution(tuple(action_space.shape))
    raise APIUsageError(
        f"no action distribution for {action_space!r}: use Discrete, MultiDiscrete or Box "
        "(wrap structured spaces with fugu.core.emulation)"
    )
