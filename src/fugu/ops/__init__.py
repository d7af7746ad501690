"""Pure tensor functions: advantages, returns, losses, normalisation."""

from fugu.ops.activations import fast_tanh
from fugu.ops.advantages import (
    credit_to_live_steps,
    episode_sums,
    gae,
    next_values_from,
    pending_live_steps,
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
    masked_center,
    masked_standardize,
    normalize_advantages,
    ppo_policy_loss,
    ppo_value_loss,
)
from fugu.ops.trust_region import (
    CPOStep,
    conjugate_gradient,
    cpo_step,
    flat_grad,
    get_flat_params,
    set_flat_params,
)

entropy = categorical_entropy
"""Alias of :func:`categorical_entropy` (the entropy of categorical logits)."""

__all__ = [
    "CPOStep",
    "approx_kl",
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_sample",
    "categorical_sample_log_prob",
    "clip_fraction",
    "conjugate_gradient",
    "cpo_step",
    "credit_to_live_steps",
    "entropy",
    "episode_sums",
    "explained_variance",
    "fast_tanh",
    "flat_grad",
    "gae",
    "gaussian_entropy",
    "gaussian_log_prob",
    "gaussian_sample",
    "get_flat_params",
    "mask_logits",
    "masked_center",
    "masked_standardize",
    "next_values_from",
    "normalize_advantages",
    "pending_live_steps",
    "ppo_policy_loss",
    "ppo_value_loss",
    "running_returns",
    "set_flat_params",
    "vtrace",
]
