"""Constrained Policy Optimization (Achiam, Held, Tamar and Abbeel 2017).

Each update takes one trust-region step of the policy that maximises the reward surrogate
``E[ratio A_r]`` subject to the linearised cost constraint and ``KL(old || new) <= max_kl``:

1. reward advantages by PPO's GAE (standardised), cost advantages by the cost critic's GAE
   (:class:`~fugu.models.cost_critic.CostCritic`, centred), on the live samples;
2. the gradients ``g`` of the reward surrogate and ``b`` of the cost surrogate with respect to
   the actor's parameters, and ``H^-1 g``, ``H^-1 b`` by conjugate gradient on the
   Fisher-vector product (the Hessian of the mean KL, by double backpropagation, plus
   ``cg_damping``);
3. the constraint value ``c = (J_c - cost_limit) (1 - cost_gamma)``, ``J_c`` the mean summed
   cost of the most recent episodes: the linearised constraint of the paper is
   ``J_c + E[ratio A_c] / (1 - gamma) <= limit``, scaled by ``1 - gamma`` to the surrogate's
   units;
4. :func:`fugu.ops.cpo_step` solves the subproblem's dual in closed form, or, when the policy
   is infeasible and no step in the trust region can reach the constraint, returns the
   recovery step ``-sqrt(2 max_kl / b^T H^-1 b) H^-1 b`` (pure cost descent);
5. a backtracking line search (``line_search_steps``, factor ``line_search_decay``) accepts the
   first step whose KL is within ``max_kl``, whose cost surrogate rises by at most the slack
   ``max(-c, 0)`` and, in the feasible cases, whose reward surrogate does not fall; when none
   passes the policy stays where it was;
6. the reward critic (the policy's separate critic) and the cost critic regress on their
   returns with Adam for ``update_epochs`` x ``num_minibatches``.

The actor and the critic must share no weights (the natural step moves the actor alone), so
:meth:`CPO.build` turns on :attr:`~fugu.models.PolicyConfig.separate_critic`; LSTM policies
are not supported. Of PPO's fields, the surrogate's (``clip_coef``, ``ent_coef``,
``target_kl``, V-trace, ``max_minibatch_size``) are unused; ``learning_rate``,
``update_epochs`` and ``num_minibatches`` drive the critics.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models import PolicyConfig
    >>> algo = CPO.build(CPOConfig(), spaces.Box(-1, 1, (4,)), spaces.Discrete(3),
    ...                  PolicyConfig())
    >>> algo.policy.config.separate_critic, sorted(algo.modules())
    (True, ['cost_critic', 'policy'])
"""

from __future__ import annotations

import dataclasses
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
from fugu.models.distributions import DistParams
from fugu.models.policy import Policy, PolicyConfig, make_policy

__all__ = ["CPO", "CPOConfig"]


@dataclass(frozen=True)
class CPOConfig(PPOConfig):
    """PPO's hyperparameters (the critics' part) plus the trust region's and the constraint's.

    Example:
        >>> CPOConfig().max_kl, CPOConfig().cost_limit
        (0.01, 25.0)
    """

    learning_rate: float = 1e-3
    """Adam step size of the two critics."""
    update_epochs: int = 10
    """Passes of the critics' regression over the rollout."""
    cost_limit: float = 25.0
    """The constraint: mean summed cost per episode at most this."""
    max_kl: float = 0.01
    """The trust region ``delta``: mean ``KL(old || new)`` of a step at most this."""
    cg_iterations: int = 15
    """Conjugate-gradient iterations for ``H^-1 g`` and ``H^-1 b``."""
    cg_damping: float = 0.1
    """Added to the Fisher-vector product (``(H + damping I) v``)."""
    line_search_steps: int = 15
    """Backtracking steps of the line search."""
    line_search_decay: float = 0.8
    """Shrink factor of each backtracking step."""
    cost_gamma: float = 0.99
    """Discount of the cost returns (and of the constraint's linearisation)."""
    cost_gae_lambda: float = 0.95
    """GAE lambda of the cost advantages."""
    cost_hidden_size: int = 64
    """Width of the cost critic's two hidden layers."""
    cost_window: int = 20
    """Finished episodes whose mean cost is ``J_c``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.uses_vtrace or self.norm_value:
            raise APIUsageError("cpo supports neither V-trace nor norm_value; use ppo for them")
        if self.max_kl <= 0 or self.cg_iterations < 1 or self.cg_damping < 0:
            raise APIUsageError("CPOConfig needs max_kl > 0, cg_iterations >= 1, cg_damping >= 0")
        if self.line_search_steps < 1 or not 0.0 < self.line_search_decay < 1.0:
            raise APIUsageError(
                "CPOConfig needs line_search_steps >= 1 and line_search_decay in (0, 1)"
            )
        if self.cost_limit < 0 or self.cost_window < 1:
            raise APIUsageError("CPOConfig needs cost_limit >= 0 and cost_window >= 1")


class CPO(PPO):
    """Constrained Policy Optimization (see the module docstring).

    Args:
        policy: A policy with a separate critic (``PolicyConfig(separate_critic=True)``).
        config: Hyperparameters.
        device: Where everything runs.
    """

    name: ClassVar[str] = "cpo"
    config_type: ClassVar[type] = CPOConfig
    needs_next_observations: ClassVar[bool] = True
    """The trainer stores ``next_observations`` (cost values of final observations)."""
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/policy",
        "loss/cost_surrogate",
        "loss/value",
        "loss/cost_value",
        "loss/kl",
        "train/cpo_case",
        "train/line_search_fraction",
        "train/episode_cost",
    )

    def __init__(
        self,
        policy: Policy,
        config: CPOConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        config = config or CPOConfig()
        if policy.critic_encoder is None or policy.is_recurrent:
            raise APIUsageError(
                "cpo needs a feed-forward policy whose critic shares no weights with the actor "
                "(PolicyConfig(separate_critic=True), kind 'mlp' or 'cnn'); CPO.build sets it"
            )
        super().__init__(policy, config, device)
        self.config: CPOConfig = config
        size = int(np.prod(policy.observation_space.shape))
        self.cost_critic = CostCritic.for_obs(size, config, self.device)
        self.actor_params = [
            p for name, p in self.policy.named_parameters() if not name.startswith("critic_")
        ]

    @classmethod
    def build(  # type: ignore[override]
        cls,
        config: CPOConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> CPO:
        """A CPO with a new policy (critic separated) and cost critic for these spaces."""
        check_action_space(cls, action_space)
        if policy_config.kind == "lstm":
            raise APIUsageError("cpo does not support LSTM policies; use policy.kind 'mlp'")
        policy_config = dataclasses.replace(policy_config, separate_critic=True)
        return cls(make_policy(observation_space, action_space, policy_config), config, device)

    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """PPO's fields plus the env's ``costs`` (refused when the env declares none)."""
        return {**super().storage_fields(env_fields), **cost_fields(self.name, env_fields)}

    def modules(self) -> dict[str, nn.Module]:
        """PPO's modules plus ``cost_critic``."""
        return {**super().modules(), "cost_critic": self.cost_critic.net}

    # -- the policy step ----------------------------------------------------------------------
    def _params(self, obs: Tensor, action_masks: Tensor | None) -> DistParams:
        params, _, _ = self.policy.forward_train(obs, None)
        if action_masks is not None:
            params = self.policy.distribution.mask(params, action_masks)
        return params

    def _surrogates(self, mb: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, DistParams]:
        """Reward and cost surrogates ``E[ratio A]`` and the distribution parameters."""
        params = self._params(mb["observations"], mb.get("action_masks"))
        logprobs = self.policy.distribution.log_prob(params, mb["actions"])
        ratio = torch.exp(logprobs - mb["logprobs"])
        return (ratio * mb["advantages"]).mean(), (ratio * mb["cost_advantages"]).mean(), params

    def _policy_step(self, mb: Mapping[str, Tensor]) -> dict[str, float]:
        c = self.config
        dist = self.policy.distribution
        with torch.no_grad():
            old_params = _detach(self._params(mb["observations"], mb.get("action_masks")))
        reward_sur, cost_sur, _ = self._surrogates(mb)
        g = ops.flat_grad(reward_sur, self.actor_params, retain_graph=True)
        b = ops.flat_grad(cost_sur, self.actor_params)

        def fisher_product(v: Tensor) -> Tensor:
            kl = dist.kl(old_params, self._params(mb["observations"], mb.get("action_masks")))
            grad_kl = ops.flat_grad(kl.mean(), self.actor_params, create_graph=True)
            return ops.flat_grad(torch.dot(grad_kl, v), self.actor_params) + c.cg_damping * v

        h_inv_g = ops.conjugate_gradient(fisher_product, g, c.cg_iterations)
        h_inv_b = ops.conjugate_gradient(fisher_product, b, c.cg_iterations)
        episode_cost = self.cost_critic.episode_cost
        violation = 0.0 if math.isnan(episode_cost) else episode_cost - c.cost_limit
        constraint = violation * (1.0 - c.cost_gamma)
        step = ops.cpo_step(g, b, h_inv_g, h_inv_b, constraint, c.max_kl)
        old_flat = ops.get_flat_params(self.actor_params)
        accepted, kl_value = 0.0, 0.0
        old_reward, old_cost = float(reward_sur.detach()), float(cost_sur.detach())
        new_reward, new_cost = old_reward, old_cost
        fraction = 1.0
        for _ in range(c.line_search_steps):
            ops.set_flat_params(self.actor_params, old_flat + fraction * step.direction)
            with torch.no_grad():
                r_new, c_new, params = self._surrogates(mb)
                kl_new = float(dist.kl(old_params, params).mean())
            improves = float(r_new) - old_reward >= 0 or step.case < 2
            cost_ok = float(c_new) - old_cost <= max(-constraint, 0.0)
            if math.isfinite(kl_new) and kl_new <= c.max_kl and improves and cost_ok:
                accepted, kl_value = fraction, kl_new
                new_reward, new_cost = float(r_new), float(c_new)
                break
            fraction *= c.line_search_decay
        else:
            ops.set_flat_params(self.actor_params, old_flat)
        return {
            "loss/policy": -new_reward,
            "loss/cost_surrogate": new_cost,
            "loss/kl": kl_value,
            "train/cpo_case": float(step.case),
            "train/line_search_fraction": accepted,
            "train/cpo_nu": step.lagrange_cost,
            "train/constraint": constraint,
        }

    # -- the update -----------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """One constrained trust-region step of the actor, then the critics' regression.

        Returns:
            ``loss/policy`` (minus the accepted reward surrogate), ``loss/cost_surrogate``,
            ``loss/kl``, ``loss/value``, ``loss/cost_value``, ``loss/explained_variance``,
            ``train/cpo_case`` (see :class:`~fugu.ops.CPOStep`), ``train/line_search_fraction``
            (0: no step accepted), ``train/cpo_nu``, ``train/constraint``,
            ``train/learning_rate`` and ``train/episode_cost`` (once episodes ended).
        """
        c = self.config
        learning_rate = self.optimizer.set_progress(progress)
        if self.reward_norm is not None or c.clip_reward is not None:
            batch = Batch({**batch.data, "rewards": self.scaled_rewards(batch)},
                          batch.initial_state, batch.info)  # fmt: skip
        self.cost_critic.observe(batch)
        with torch.no_grad():
            advantages = self.advantages(batch)
            returns = advantages + batch["values"]
        _, cost_advantages, cost_returns = self.cost_critic.targets(
            batch, self.policy.preprocess, c.cost_gamma, c.cost_gae_lambda
        )
        data = {
            "observations": batch["observations"],
            "actions": batch["actions"],
            "logprobs": batch["logprobs"],
            "values": batch["values"],
            "returns": returns,
            "cost_returns": cost_returns,
            "advantages": advantages,
            "cost_advantages": cost_advantages,
        }
        if "action_masks" in batch:
            data["action_masks"] = batch["action_masks"]
        mb = {k: v.reshape(-1, *v.shape[2:]) for k, v in data.items()}
        masks = batch.get("masks")
        if masks is not None and not bool(masks.all()):
            live = masks.reshape(-1)
            mb = {k: v[live] for k, v in mb.items()}
        mb["advantages"] = ops.normalize_advantages(mb["advantages"])
        mb["cost_advantages"] = mb["cost_advantages"] - mb["cost_advantages"].mean()
        metrics = self._policy_step(mb)
        with torch.no_grad():
            features = self.policy.preprocess(mb["observations"])
        metrics["loss/value"] = self._fit_values(mb)
        metrics["loss/cost_value"] = self.cost_critic.fit(
            features, mb["cost_returns"], c.update_epochs, c.num_minibatches,
            self._cpu_generator, progress,
        )  # fmt: skip
        self.num_updates += 1
        with torch.no_grad():
            explained = ops.explained_variance(mb["values"], mb["returns"])
            self.policy.update_obs_norm(mb["observations"])
        metrics["loss/explained_variance"] = float(explained)
        metrics["train/learning_rate"] = learning_rate
        if not math.isnan(self.cost_critic.episode_cost):
            metrics["train/episode_cost"] = self.cost_critic.episode_cost
        return metrics

    def _fit_values(self, mb: Mapping[str, Tensor]) -> float:
        """Regress the policy's (separate) critic on the reward returns; the actor gets no
        gradient from it."""
        c = self.config
        count = int(mb["returns"].shape[0])
        total, steps = 0.0, 0
        for _ in range(c.update_epochs):
            order = torch.randperm(count, generator=self._cpu_generator).to(self.device)
            for idx in torch.tensor_split(order, c.num_minibatches):
                if not idx.numel():
                    continue
                _, values, _ = self.policy.forward_train(mb["observations"][idx], None)
                loss = ops.ppo_value_loss(
                    values.float(), mb["values"][idx], mb["returns"][idx],
                    c.clip_coef if c.clip_vloss else None,
                )  # fmt: skip
                self.optimizer.backward(loss)
                self.optimizer.step()
                total += float(loss.detach())
                steps += 1
        self.optimizer.pop_grad_norm()
        return total / max(steps, 1)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PPO's state plus the cost critic's."""
        return {**super().state_dict(), "cost_critic": self.cost_critic.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.cost_critic.load_state_dict(state["cost_critic"])


def _detach(params: DistParams) -> DistParams:
    if isinstance(params, tuple):
        return (params[0].detach(), params[1].detach())
    return params.detach()
