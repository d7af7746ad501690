"""PPO with a second, intrinsic critic: the RND paper's two value heads, for any intrinsic hook.

Exploration hooks (:mod:`fugu.explore`) with ``target="intrinsic_rewards"`` put their bonus in
the batch's ``intrinsic_rewards`` instead of ``rewards``. ``ppo_rnd`` then learns two value
functions: PPO's own critic on the extrinsic rewards (episodic, discount ``gamma``), and an
intrinsic critic (a separate MLP on the observations, its own optimizer) on the intrinsic
rewards with its own discount ``int_gamma`` and *non-episodic* returns (episode ends do not
cut them: novelty found after a reset still counts, as in Burda et al. 2018). The policy
follows ``ext_coef * A_ext + int_coef * A_int``.

Why a subclass and not a flag of PPO: the second critic changes what the algorithm owns (a
module, an optimizer) and learns, while PPO stays the readable reference; the only hook in
:class:`~fugu.algos.ppo.PPO` is :meth:`~fugu.algos.ppo.PPO.policy_advantages`. Without
``intrinsic_rewards`` in a batch (no hook targets them) ``ppo_rnd`` trains exactly like PPO.

The intrinsic values are computed in :meth:`PPORND.update` (the policy has not changed since
the rollout, so they equal the rollout's), and the value after the last step is that of the
last ``next_observations`` when the batch has them (hooks that ask for them make the trainer
store them), else of the last observation.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models import PolicyConfig
    >>> algo = PPORND.build(PPORNDConfig(), spaces.Box(0, 1, (4,)), spaces.Discrete(2),
    ...                     PolicyConfig())
    >>> sorted(algo.modules())
    ['intrinsic_critic', 'policy']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu import ops
from fugu.algos.base import check_action_space
from fugu.algos.ppo import PPO, PPOConfig
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.models.optim import Optimizer
from fugu.models.policy import Policy, PolicyConfig, make_policy

__all__ = ["PPORND", "PPORNDConfig"]


@dataclass(frozen=True)
class PPORNDConfig(PPOConfig):
    """PPO's hyperparameters plus the intrinsic critic's.

    Example:
        >>> PPORNDConfig().ext_coef, PPORNDConfig().int_gamma
        (2.0, 0.99)
    """

    int_gamma: float = 0.99
    """Discount of the intrinsic (non-episodic) returns."""
    ext_coef: float = 2.0
    """Weight of the extrinsic advantages in the policy loss (the paper's 2)."""
    int_coef: float = 1.0
    """Weight of the intrinsic advantages in the policy loss (the paper's 1)."""
    int_hidden_size: int = 128
    """Width of the intrinsic critic's two hidden layers."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.uses_vtrace:
            raise APIUsageError(
                "ppo_rnd does not support V-trace (vtrace_rho_clip/vtrace_c_clip); use ppo"
            )


class PPORND(PPO):
    """PPO with an intrinsic critic (see the module docstring).

    Args:
        policy: The policy (actor and extrinsic critic).
        intrinsic_critic: A module mapping ``[B, *obs_shape]`` observations to ``[B, 1]``.
        config: Hyperparameters.
        device: Where everything runs.
    """

    name: ClassVar[str] = "ppo_rnd"
    config_type: ClassVar[type] = PPORNDConfig
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        *PPO.dashboard_metrics,
        "loss/intrinsic_value",
    )
    intrinsic_rewards_key: ClassVar[str] = "intrinsic_rewards"
    """The batch entry whose rewards the intrinsic critic learns (hooks' ``target``)."""

    def __init__(
        self,
        policy: Policy,
        intrinsic_critic: nn.Module,
        config: PPORNDConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        config = config or PPORNDConfig()
        super().__init__(policy, config, device)
        self.config: PPORNDConfig = config
        self.intrinsic_critic = intrinsic_critic.to(self.device)
        self.intrinsic_optimizer = Optimizer(
            self.intrinsic_critic.parameters(),
            learning_rate=config.learning_rate,
            lr_schedule=config.lr_schedule,
            adam_eps=config.adam_eps,
            adam_betas=config.adam_betas,
            max_grad_norm=config.max_grad_norm,
            device=self.device,
        )
        self._intrinsic: tuple[Tensor, Tensor] | None = None  # advantages, returns

    @classmethod
    def build(  # type: ignore[override]
        cls,
        config: PPORNDConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> PPORND:
        """A PPORND with a new policy and intrinsic critic (an MLP on flattened obs)."""
        check_action_space(cls, action_space)
        policy = make_policy(observation_space, action_space, policy_config)
        size = int(torch.Size(observation_space.shape).numel())
        hidden = config.int_hidden_size
        critic = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )
        return cls(policy, critic, config, device)

    def modules(self) -> dict[str, nn.Module]:
        """``{"policy": ..., "intrinsic_critic": ...}``."""
        return {"policy": self.policy, "intrinsic_critic": self.intrinsic_critic}

    def intrinsic_values(self, observations: Tensor) -> Tensor:
        """Intrinsic values ``[*lead]`` of observations ``[*lead, *obs_shape]`` (no grad)."""
        lead = observations.shape[: observations.dim() - self.policy.obs_ndim]
        with torch.no_grad():
            return self._intrinsic_forward(
                observations.reshape(-1, *observations.shape[len(lead) :])
            ).reshape(lead)

    def _intrinsic_forward(self, observations: Tensor) -> Tensor:
        """``[B]`` intrinsic values of ``[B, *obs_shape]`` observations (scaled as the policy's)."""
        return self.intrinsic_critic(observations.float() * self.policy.obs_scale).squeeze(-1)

    def policy_advantages(self, batch: Batch, advantages: Tensor) -> Tensor:
        """``ext_coef * advantages + int_coef * intrinsic advantages`` (extrinsic only when
        the batch has no ``intrinsic_rewards``)."""
        if self._intrinsic is None:
            return advantages
        c = self.config
        return c.ext_coef * advantages + c.int_coef * self._intrinsic[0]

    def _intrinsic_targets(self, batch: Batch, rewards: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Intrinsic values, advantages and returns ``[T, N]`` of a batch (non-episodic)."""
        c = self.config
        values = self.intrinsic_values(batch["observations"])
        after = batch["next_observations"][-1] if "next_observations" in batch else None
        last = self.intrinsic_values(after) if after is not None else values[-1]
        next_values = torch.cat([values[1:], last[None]])
        never = torch.zeros_like(rewards, dtype=torch.bool)
        masks = batch.get("masks")
        if masks is not None and bool(masks.all()):
            masks = None
        advantages = ops.gae(
            rewards, values, next_values, never, never, c.int_gamma, c.gae_lambda, masks=masks
        )
        return values, advantages, advantages + values

    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """PPO's update on the mixed advantages, then the intrinsic critic's epochs.

        Returns:
            PPO's metrics plus ``loss/intrinsic_value`` and ``train/intrinsic_return_mean``
            (when the batch has ``intrinsic_rewards``).
        """
        rewards = batch.get(self.intrinsic_rewards_key)
        if rewards is None:
            self._intrinsic = None
            return super().update(batch, progress)
        _, advantages, returns = self._intrinsic_targets(batch, rewards.float())
        self._intrinsic = (advantages, returns)
        try:
            metrics = super().update(batch, progress)
        finally:
            self._intrinsic = None
        metrics["loss/intrinsic_value"] = self._fit_intrinsic(batch, returns, progress)
        metrics["train/intrinsic_return_mean"] = float(returns.mean())
        return metrics

    def _fit_intrinsic(self, batch: Batch, returns: Tensor, progress: float) -> float:
        """Regress the intrinsic critic on ``returns`` (live samples), PPO's epochs and
        minibatches; returns the mean loss."""
        c = self.config
        self.intrinsic_optimizer.set_progress(progress)
        obs = batch["observations"]
        steps, rows = returns.shape
        flat_obs = obs.reshape(steps * rows, *obs.shape[2:])
        flat_returns = returns.reshape(-1)
        masks = batch.get("masks")
        if masks is not None and not bool(masks.all()):
            live = masks.reshape(-1)
            flat_obs, flat_returns = flat_obs[live], flat_returns[live]
        count = flat_returns.shape[0]
        total, steps_run = 0.0, 0
        for _ in range(c.update_epochs):
            order = torch.randperm(count, generator=self._cpu_generator).to(self.device)
            for idx in torch.tensor_split(order, c.num_minibatches):
                if not idx.numel():
                    continue
                with self.intrinsic_optimizer.autocast():
                    pred = self._intrinsic_forward(flat_obs[idx]).float()
                    loss = 0.5 * (pred - flat_returns[idx]).pow(2).mean()
                self.intrinsic_optimizer.backward(loss)
                self.intrinsic_optimizer.step()
                total += float(loss.detach())
                steps_run += 1
        return total / max(steps_run, 1)

    def state_dict(self) -> dict[str, Any]:
        """PPO's state plus the intrinsic critic's optimizer."""
        return {
            **super().state_dict(),
            "intrinsic_optimizer": self.intrinsic_optimizer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.intrinsic_optimizer.load_state_dict(state["intrinsic_optimizer"])
