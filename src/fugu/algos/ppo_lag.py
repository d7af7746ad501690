"""PPO-Lagrangian: PPO on a cost-penalised objective, the penalty a Lagrange multiplier.

The constrained problem ``max J_r  s.t.  J_c <= cost_limit`` (``J_c`` the expected summed cost
of an episode, from the env's ``costs`` field) becomes the saddle point
``max_pi min_{lambda >= 0} J_r - lambda (J_c - cost_limit)``. Each update:

1. the rollout's costs are added to the per-row episode sums; when episodes ended, the
   multiplier moves on the mean cost of the most recent ``cost_window`` of them, by a plain
   ascent step (``lagrangian = "plain"``) or by the PID controller of Stooke, Achiam and
   Abbeel 2020 (``"pid"``, the default: less overshoot and oscillation), see
   :mod:`fugu.models.lagrange`;
2. a cost critic (:class:`~fugu.models.cost_critic.CostCritic`, its own MLP and Adam) gives
   cost advantages by GAE (discount ``cost_gamma``, trace ``cost_gae_lambda``), truncations
   bootstrapped from the final observations (``needs_next_observations``);
3. PPO's update runs unchanged on the mixed advantages
   ``(A_r - lambda A_c) / (1 + lambda)``, ``A_r`` normalised over the batch and ``A_c``
   centred (as OmniSafe); the only hook used is
   :meth:`~fugu.algos.ppo.PPO.policy_advantages`;
4. the cost critic regresses on the cost returns (PPO's epochs and minibatches).

Everything else (acting, bootstrapping, reward/value normalisation, recurrent policies,
checkpoints) is PPO's. An env without a ``costs`` field is refused.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.core.schema import COSTS
    >>> from fugu.models import PolicyConfig
    >>> algo = PPOLag.build(PPOLagConfig(), spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (2,)),
    ...                     PolicyConfig())
    >>> sorted(algo.modules()), sorted(algo.storage_fields({"costs": COSTS}))
    (['cost_critic', 'policy'], ['costs', 'logprobs', 'values'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu import ops
from fugu.algos.base import check_action_space
from fugu.algos.ppo import PPO, PPOConfig
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.cost_critic import CostCritic, cost_fields
from fugu.models.lagrange import LagrangeMultiplier, PIDLagrangeMultiplier
from fugu.models.policy import Policy, PolicyConfig, make_policy

__all__ = ["PPOLag", "PPOLagConfig"]

LAGRANGIANS = ("pid", "plain")
"""The multiplier updates :class:`PPOLagConfig` offers."""


@dataclass(frozen=True)
class PPOLagConfig(PPOConfig):
    """PPO's hyperparameters plus the constraint's.

    Example:
        >>> PPOLagConfig().cost_limit, PPOLagConfig().lagrangian
        (25.0, 'pid')
    """

    cost_limit: float = 25.0
    """The constraint: mean summed cost per episode at most this (OmniSafe's 25)."""
    lagrangian: str = "pid"
    """Multiplier update: ``"pid"`` (Stooke et al. 2020) or ``"plain"`` (gradient ascent)."""
    lambda_init: float = 0.0
    """The multiplier before the first update."""
    lambda_lr: float = 0.035
    """Step of the plain update per unit of violation."""
    lambda_max: float | None = None
    """Upper clip of the multiplier (``None``: unbounded)."""
    pid_kp: float = 0.1
    """PID proportional gain."""
    pid_ki: float = 0.01
    """PID integral gain."""
    pid_kd: float = 0.01
    """PID derivative gain."""
    pid_p_ema: float = 0.95
    """Smoothing of the proportional error."""
    pid_d_ema: float = 0.95
    """Smoothing of the cost the derivative term sees."""
    pid_d_delay: int = 10
    """Updates between the two costs the derivative term compares."""
    cost_gamma: float = 0.99
    """Discount of the cost returns."""
    cost_gae_lambda: float = 0.95
    """GAE lambda of the cost advantages."""
    cost_hidden_size: int = 64
    """Width of the cost critic's two hidden layers."""
    cost_window: int = 20
    """Finished episodes whose mean cost the multiplier follows."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lagrangian not in LAGRANGIANS:
            raise APIUsageError(
                f"PPOLagConfig.lagrangian must be one of {LAGRANGIANS}, got {self.lagrangian!r}"
            )
        if self.cost_limit < 0 or self.cost_window < 1:
            raise APIUsageError("PPOLagConfig needs cost_limit >= 0 and cost_window >= 1")
        if not (0.0 <= self.cost_gamma <= 1.0 and 0.0 <= self.cost_gae_lambda <= 1.0):
            raise APIUsageError("PPOLagConfig needs cost_gamma and cost_gae_lambda in [0, 1]")

    def make_multiplier(self) -> LagrangeMultiplier | PIDLagrangeMultiplier:
        """The multiplier this config describes."""
        if self.lagrangian == "plain":
            return LagrangeMultiplier(self.lambda_lr, self.lambda_init, self.lambda_max)
        return PIDLagrangeMultiplier(
            self.pid_kp, self.pid_ki, self.pid_kd, self.pid_p_ema, self.pid_d_ema,
            self.pid_d_delay, self.lambda_init, self.lambda_max,
        )  # fmt: skip


class PPOLag(PPO):
    """PPO-Lagrangian (see the module docstring).

    Args:
        policy: The policy (actor and reward critic).
        config: Hyperparameters.
        device: Where everything runs.
    """

    name: ClassVar[str] = "ppo_lag"
    config_type: ClassVar[type] = PPOLagConfig
    needs_next_observations: ClassVar[bool] = True
    """The trainer stores ``next_observations`` (cost values of final observations)."""
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        *PPO.dashboard_metrics,
        "loss/cost_value",
        "train/lagrange_multiplier",
        "train/episode_cost",
    )

    def __init__(
        self,
        policy: Policy,
        config: PPOLagConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        config = config or PPOLagConfig()
        super().__init__(policy, config, device)
        self.config: PPOLagConfig = config
        size = int(np.prod(policy.observation_space.shape))
        self.cost_critic = CostCritic.for_obs(size, config, self.device)
        self.multiplier = config.make_multiplier()
        self._cost_advantages: Tensor | None = None

    @classmethod
    def build(  # type: ignore[override]
        cls,
        config: PPOLagConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> PPOLag:
        """A PPOLag with a new policy and cost critic for these spaces."""
        check_action_space(cls, action_space)
        return cls(make_policy(observation_space, action_space, policy_config), config, device)

    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """PPO's fields plus the env's ``costs`` (refused when the env declares none)."""
        return {**super().storage_fields(env_fields), **cost_fields(self.name, env_fields)}

    def modules(self) -> dict[str, nn.Module]:
        """PPO's modules plus ``cost_critic``."""
        return {**super().modules(), "cost_critic": self.cost_critic.net}

    def policy_advantages(self, batch: Batch, advantages: Tensor) -> Tensor:
        """``(A_r - lambda A_c) / (1 + lambda)`` with ``A_r`` standardised and ``A_c``
        centred over the live samples."""
        if self._cost_advantages is None:
            return advantages
        masks = batch.get("masks")
        lam = self.multiplier.value
        reward = ops.masked_standardize(advantages, masks)
        cost = ops.masked_center(self._cost_advantages, masks)
        return (reward - lam * cost) / (1.0 + lam)

    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """Multiplier step, PPO on the penalised advantages, then the cost critic's epochs.

        Returns:
            PPO's metrics plus ``loss/cost_value``, ``train/lagrange_multiplier`` and
            ``train/episode_cost`` (the mean the multiplier follows, once episodes ended).
        """
        c = self.config
        if self.cost_critic.observe(batch):
            self.multiplier.update(self.cost_critic.episode_cost, c.cost_limit)
        _, cost_advantages, cost_returns = self.cost_critic.targets(
            batch, self.policy.preprocess, c.cost_gamma, c.cost_gae_lambda
        )
        features, targets = self._cost_samples(batch, cost_returns)
        self._cost_advantages = cost_advantages
        try:
            metrics = super().update(batch, progress)
        finally:
            self._cost_advantages = None
        metrics["loss/cost_value"] = self.cost_critic.fit(
            features, targets, c.update_epochs, c.num_minibatches, self._cpu_generator, progress
        )
        metrics["train/lagrange_multiplier"] = self.multiplier.value
        if not math.isnan(self.cost_critic.episode_cost):
            metrics["train/episode_cost"] = self.cost_critic.episode_cost
        return metrics

    def _cost_samples(self, batch: Batch, returns: Tensor) -> tuple[Tensor, Tensor]:
        """Preprocessed observations and cost returns of the live samples (flat)."""
        obs = batch["observations"]
        flat = obs.reshape(-1, *obs.shape[2:])
        targets = returns.reshape(-1)
        masks = batch.get("masks")
        if masks is not None and not bool(masks.all()):
            live = masks.reshape(-1)
            flat, targets = flat[live], targets[live]
        with torch.no_grad():
            return self.policy.preprocess(flat), targets

    def state_dict(self) -> dict[str, Any]:
        """PPO's state plus the cost critic's and the multiplier's."""
        return {
            **super().state_dict(),
            "cost_critic": self.cost_critic.state_dict(),
            "multiplier": self.multiplier.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.cost_critic.load_state_dict(state["cost_critic"])
        self.multiplier.load_state_dict(state["multiplier"])
