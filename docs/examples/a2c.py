"""Advantage actor-critic (A2C): a complete fugu algorithm, written against the protocol.

This file is the worked example of ``docs/writing-an-algorithm.md``. Read it top to bottom:
:class:`A2CConfig` holds every knob (each documented), :class:`A2C` satisfies
:class:`fugu.algos.base.Algorithm`. Per rollout it takes one gradient step on
``policy loss - ent_coef * entropy + vf_coef * value loss``, with :func:`fugu.ops.gae`
advantages. Only live samples (``batch["masks"]`` true) enter the losses, and the env's
``action_masks`` are respected when acting and when scoring actions.

fugu does not register it; register it yourself and train it like any other algorithm:

Example:
    >>> import torch
    >>> from gymnasium import spaces
    >>> from fugu.models import PolicyConfig
    >>> algo = A2C.build(A2CConfig(), spaces.Box(-1, 1, (4,)), spaces.Discrete(2), PolicyConfig())
    >>> out = algo.act(torch.zeros(3, 4), None, {"action_masks": torch.tensor([[False, True]] * 3)})
    >>> out.actions.tolist(), sorted(out.fields), sorted(algo.modules())
    ([1, 1, 1], ['values'], ['policy'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu import ops
from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.buffers import Batch, PolicyState
from fugu.core.schema import Field
from fugu.models import Policy, PolicyConfig, make_policy
from fugu.models.optim import Optimizer

__all__ = ["A2C", "A2CConfig"]


@dataclass(frozen=True)
class A2CConfig:
    """Hyperparameters of A2C (the ``[a2c]`` config section, ``--a2c.KEY VALUE``)."""

    learning_rate: float = 7e-4
    """Adam step size at the start of training."""
    lr_schedule: str = "constant"
    """``"constant"``, ``"linear"`` or ``"cosine"`` decay over the run's env steps."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE trace decay (1: Monte Carlo returns within the rollout, as in classic A2C)."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip of the global gradient norm (``<= 0`` disables it)."""
    norm_adv: bool = False
    """Normalise the advantages of each rollout (over its live samples)."""
    seed: int = 0
    """Seed of the generator that samples actions (``--seed`` sets it too)."""


class A2C:
    """Advantage actor-critic: one gradient step per rollout.

    Args:
        policy: The actor-critic to train (moved to ``device``).
        config: Hyperparameters.
        device: Where the policy and the update run.
    """

    name: ClassVar[str] = "a2c"
    config_type: ClassVar[type] = A2CConfig
    collection: ClassVar[Collection] = "rollout"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "multi_discrete", "box")
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/policy",
        "loss/value",
        "loss/entropy",
        "loss/explained_variance",
        "train/learning_rate",
    )

    def __init__(
        self, policy: Policy, config: A2CConfig, device: torch.device | str = "cpu"
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.policy = policy.to(self.device)
        self.optimizer = Optimizer(
            self.policy.parameters(),
            learning_rate=config.learning_rate,
            lr_schedule=config.lr_schedule,
            max_grad_norm=config.max_grad_norm,
            device=self.device,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.num_updates = 0

    @classmethod
    def build(
        cls,
        config: A2CConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> A2C:
        """An A2C with a new policy for these spaces (the trainer seeds torch first)."""
        check_action_space(cls, action_space)
        return cls(make_policy(observation_space, action_space, policy_config), config, device)

    # -- what the trainer stores, and acting ------------------------------------------------
    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """``values`` (so the batch gets ``next_values``) and the env's ``action_masks``."""
        fields = {"values": Field("values", (), np.float32)}
        if "action_masks" in env_fields:  # copied from the env into the batch
            fields["action_masks"] = env_fields["action_masks"]
        return fields

    def modules(self) -> dict[str, nn.Module]:
        """``{"policy": policy}``: checkpoints save its weights as ``policy.*``."""
        return {"policy": self.policy}

    def initial_state(self, num_rows: int) -> PolicyState:
        """The policy's initial recurrent state (``None`` when feed-forward)."""
        return self.policy.initial_state(num_rows, self.device)

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """Zero the recurrent state of rows that start an episode."""
        return self.policy.reset_state(state, starts)

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Sample (or take the mode of) actions; illegal ``action_masks`` entries never occur."""
        with torch.inference_mode():
            params, values, state = self.policy.forward_eval(obs, state)
            dist = self.policy.distribution
            if "action_masks" in extras:
                params = dist.mask(params, extras["action_masks"].to(self.device))
            if deterministic:
                actions = dist.mode(params)
            else:
                actions = dist.sample(params, self.generator)
        return ActOutput(actions, {"values": values}, state)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Values ``[B]`` of observations (truncated rows' final ones, the last step's next)."""
        with torch.inference_mode():
            return self.policy.forward_eval(obs, state)[1]

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float) -> dict[str, float]:
        """One gradient step on a ``[T, N]`` rollout at the learning rate of ``progress``."""
        c = self.config
        learning_rate = self.optimizer.set_progress(progress)
        masks = batch["masks"]
        with torch.no_grad():
            advantages = ops.gae(
                batch["rewards"], batch["values"], batch["next_values"], batch["terminals"],
                batch["truncations"], c.gamma, c.gae_lambda, masks=masks,
            )  # fmt: skip
            returns = advantages + batch["values"]

        # Sequence-major [N * T] order: what a recurrent policy's forward_train returns.
        def flat(x: Tensor) -> Tensor:
            return x.transpose(0, 1).reshape(-1, *x.shape[2:])

        live = flat(masks)
        if self.policy.is_recurrent:  # whole sequences through the core, then the live steps
            params, values, _ = self.policy.forward_train(
                batch["observations"].transpose(0, 1),
                batch.initial_state,
                batch["starts"].transpose(0, 1),
            )
            params, values = _rows(params, live), values[live]
        else:  # feed-forward: only the live samples go through the network
            params, values, _ = self.policy.forward_train(flat(batch["observations"])[live])
        dist = self.policy.distribution
        if "action_masks" in batch:
            params = dist.mask(params, flat(batch["action_masks"])[live])
        advantages, returns = flat(advantages)[live], flat(returns)[live]
        if c.norm_adv:
            advantages = ops.normalize_advantages(advantages)
        logprobs = dist.log_prob(params, flat(batch["actions"])[live])
        policy_loss = -(logprobs * advantages).mean()
        value_loss = 0.5 * (values - returns).pow(2).mean()
        entropy = dist.entropy(params).mean()
        self.optimizer.backward(policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss)
        self.optimizer.step()
        self.num_updates += 1
        explained = ops.explained_variance(flat(batch["values"])[live], returns)
        return {
            "loss/policy": policy_loss.item(),
            "loss/value": value_loss.item(),
            "loss/entropy": entropy.item(),
            "loss/explained_variance": float(explained),
            "train/learning_rate": learning_rate,
            "train/grad_norm": self.optimizer.pop_grad_norm(),
        }

    # -- state besides the weights ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer, action-sampling generator and update count (weights are saved apart)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])


def _rows(params: Any, rows: Tensor) -> Any:
    """The distribution parameters of some samples (a Gaussian's log-std is shared)."""
    if isinstance(params, tuple):
        mean, log_std = params
        return mean[rows], log_std
    return params[rows]
