"""Pure tensor functions: advantages, returns, losses, normalisation."""

from fugu.ops.activations import fast_tanh
from fugu.ops.advantages import (
    credit_to_live_steps,
    gae,
    next_values_from,
    running_returns,
    vtrace,
)
from fugu.ops.distributions import (
    categorical_entropy,
    categorical_log_prob,
    categorical_sample,
    categorical_sample_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
    gaussian_sample,
    mask_logits,
)
from fugu.ops.losses import (
    approx_kl,
    clip_fraction,
    explained_variance,
    normalize_advantages,
    ppo_policy_loss,
    ppo_value_loss,
)

entropy = categorical_entropy
"""Alias of :func:`categorical_entropy` (the entropy of categorical logits)."""

__all__ = [
    "approx_kl",
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_sample",
    "categorical_sample_log_prob",
    "clip_fraction",
    "credit_to_live_steps",
    "entropy",
    "explained_variance",
    "fast_tanh",
    "gae",
    "gaussian_entropy",
    "gaussian_log_prob",
    "gaussian_sample",
    "mask_logits",
    "next_values_from",
    "normalize_advantages",
    "ppo_policy_loss",
    "ppo_value_loss",
    "running_returns",
    "vtrace",
]
