"""Policies and action distributions (torch)."""

from fugu.models.distributions import (
    ActionDistribution,
    CategoricalDistribution,
    DistParams,
    GaussianDistribution,
    MultiCategoricalDistribution,
    make_distribution,
)
from fugu.models.normalize import RunningNorm
from fugu.models.policy import Policy, PolicyConfig, PolicyState, make_policy

__all__ = [
    "ActionDistribution",
    "CategoricalDistribution",
    "DistParams",
    "GaussianDistribution",
    "MultiCategoricalDistribution",
    "Policy",
    "PolicyConfig",
    "PolicyState",
    "RunningNorm",
    "make_distribution",
    "make_policy",
]
