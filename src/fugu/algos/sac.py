"""Soft Actor-Critic: twin critics, tanh-squashed Gaussian actor, automatic entropy tuning.

Read top to bottom: :class:`SACConfig` (every knob), :class:`SquashedGaussianActor`, then
:class:`SAC`, a ``replay`` algorithm of the :class:`~fugu.algos.base.Algorithm` protocol for
Box actions. The actor samples ``u ~ N(mean, std)`` and acts ``tanh(u)`` scaled to the Box's
bounds; its log-probability carries the change-of-variables correction
``- sum log(1 - tanh(u)^2)`` (computed as ``2 (log 2 - u - softplus(-2u))``, stable for large
``|u|``). The critics regress ``r + discount (1 - terminal) (min Q_target(s', a') - alpha log
pi(a'|s'))``; truncated transitions bootstrap from their final observation. With
``auto_entropy`` the temperature ``alpha`` is learnt so that the policy's entropy tracks
``target_entropy`` (default ``-action_size``).

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models.policy import PolicyConfig
    >>> algo = SAC.build(SACConfig(hidden_sizes=(16,)), spaces.Box(-1, 1, (3,)),
    ...                  spaces.Box(-2, 2, (2,)), PolicyConfig())
    >>> actions = algo.act(torch.zeros(4, 3), None, {}).actions
    >>> actions.shape, bool((actions.abs() <= 2).all())
    (torch.Size([4, 2]), True)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.nn import functional as F

from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.algos.offpolicy import (
    BoxScale,
    ReplayAlgorithm,
    TwinQ,
    check_replay_config,
    discounts,
    flat_size,
    mlp,
    polyak_update,
)
from fugu.buffers import Batch, PolicyState, ReplayBuffer
from fugu.core.errors import APIUsageError
from fugu.models.optim import SCHEDULES, Optimizer
from fugu.models.policy import PolicyConfig

__all__ = ["SAC", "SACConfig", "SquashedGaussianActor"]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Bounds of the actor's log standard deviation."""


@dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of SAC.

    Example:
        >>> SACConfig().tau
        0.005
    """

    learning_rate: float = 3e-4
    """Adam step size of the actor, the critics and the temperature."""
    lr_schedule: str = "constant"
    """``"constant"``, ``"linear"`` or ``"cosine"`` over the run's env steps."""
    gamma: float = 0.99
    """Discount factor."""
    buffer_size: int = 1_000_000
    """Transitions the replay ring keeps."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 100
    """Transitions stored before the first update (actions are uniformly random until then)."""
    gradient_steps: int = 1
    """Gradient steps after each collection of ``train.num_steps`` steps of every row: the
    update-to-data ratio is ``gradient_steps / (env.num_envs * train.num_steps)``."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    auto_entropy: bool = True
    """Learn the temperature ``alpha`` so the entropy tracks ``target_entropy``."""
    init_alpha: float = 1.0
    """Initial temperature (the fixed one when ``auto_entropy`` is off)."""
    target_entropy: float | None = None
    """Entropy target of automatic tuning (``None``: ``-action_size``)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the actor's and each critic's hidden layers."""
    activation: str = "relu"
    """Hidden activation: ``"relu"``, ``"tanh"`` or ``"gelu"``."""
    max_grad_norm: float = 0.0
    """Clip of each network's gradient norm (``<= 0`` disables it)."""
    n_step: int = 1
    """Rewards summed per target (``gamma ** k`` bootstraps after ``k <= n_step`` steps)."""
    prioritized: bool = False
    """Prioritized replay (priorities from the first critic's TD error)."""
    per_alpha: float = 0.6
    """Priority exponent of prioritized replay."""
    per_beta: float = 0.4
    """Importance-weight exponent at the start (annealed to ``per_beta_end``)."""
    per_beta_end: float = 1.0
    """Importance-weight exponent at the end of the run."""
    her_strategy: str = "none"
    """Hindsight relabelling on goal envs: ``"none"``, ``"future"``, ``"final"`` or
    ``"episode"`` (see :mod:`fugu.buffers.her`)."""
    her_k: int = 4
    """Relabelled goals per real one (a fraction ``k / (k + 1)`` of each batch)."""
    checkpoint_replay: bool = True
    """Save the replay ring in checkpoints (without it, resume refills it first)."""
    seed: int = 0
    """Seed of the generator sampling actions."""

    def __post_init__(self) -> None:
        check_replay_config(self, "SACConfig")
        if self.lr_schedule not in SCHEDULES:
            raise APIUsageError(f"SACConfig.lr_schedule must be one of {SCHEDULES}")
        if not 0.0 < self.tau <= 1.0:
            raise APIUsageError(f"SACConfig.tau must lie in (0, 1], got {self.tau}")
        if self.init_alpha <= 0:
            raise APIUsageError("SACConfig.init_alpha must be > 0")


class SquashedGaussianActor(nn.Module):
    """A Gaussian policy squashed by tanh: actions in ``[-1, 1]`` with exact log-probabilities.

    Args:
        obs_size: Values per (flattened) observation.
        action_size: Action dimensions.
        hidden_sizes: Hidden layer widths.
        activation: Hidden activation.
    """

    def __init__(
        self, obs_size: int, action_size: int, hidden_sizes: tuple[int, ...], activation: str
    ) -> None:
        super().__init__()
        self.net = mlp(obs_size, hidden_sizes, 2 * action_size, activation)
        self.action_size = action_size

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_std)`` of the pre-squash Gaussian, each ``[B, action_size]``."""
        out = self.net(obs.reshape(obs.shape[0], -1).float())
        mean, log_std = out.split(self.action_size, -1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, obs: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised actions in ``[-1, 1]`` and their log-probabilities ``[B]``."""
        mean, log_std = self(obs)
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        u = mean + std * noise
        logp = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2.0) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), logp


class SAC(ReplayAlgorithm):
    """Soft Actor-Critic on Box actions.

    Args:
        actor: The squashed Gaussian actor.
        critic: The twin critics (their target copy is made here).
        action_space: The env's Box (actions are scaled to its bounds).
        config: Hyperparameters.
        device: Where the networks and the update run.
    """

    name: ClassVar[str] = "sac"
    config_type: ClassVar[type] = SACConfig
    collection: ClassVar[Collection] = "replay"
    action_spaces: ClassVar[tuple[str, ...]] = ("box",)
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/critic",
        "loss/actor",
        "loss/alpha",
        "train/alpha",
        "train/entropy",
        "train/replay_size",
    )

    def __init__(
        self,
        actor: SquashedGaussianActor,
        critic: TwinQ,
        action_space: spaces.Box,
        config: SACConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config = config or SACConfig()
        self.device = torch.device(device)
        self.actor = actor.to(self.device)
        self.critic = critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic)  # never in an optimizer; used under no_grad
        self.scale = BoxScale(action_space, self.device)
        self.target_entropy = (
            -float(self.scale.size) if config.target_entropy is None else config.target_entropy
        )
        self.log_alpha = nn.Parameter(
            torch.tensor(math.log(config.init_alpha), device=self.device),
            requires_grad=config.auto_entropy,
        )
        options: dict[str, Any] = {
            "learning_rate": config.learning_rate,
            "lr_schedule": config.lr_schedule,
            "max_grad_norm": config.max_grad_norm,
            "device": self.device,
            "foreach": True,
        }
        self.actor_optimizer = Optimizer(self.actor.parameters(), **options)
        self.critic_optimizer = Optimizer(self.critic.parameters(), **options)
        self.alpha_optimizer = (
            Optimizer([self.log_alpha], **options) if config.auto_entropy else None
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.num_updates = 0
        self.replay: ReplayBuffer | None = None
        self._warm = False

    @classmethod
    def build(
        cls,
        config: SACConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> SAC:
        """A SAC with new networks for these spaces (``[sac]`` sets their architecture; the
        ``[policy]`` section is not used)."""
        check_action_space(cls, action_space)
        assert isinstance(action_space, spaces.Box)
        obs_size, act_size = flat_size(observation_space.shape), flat_size(action_space.shape)
        hidden = tuple(config.hidden_sizes)
        actor = SquashedGaussianActor(obs_size, act_size, hidden, config.activation)
        critic = TwinQ(obs_size, act_size, hidden, config.activation)
        return cls(actor, critic, action_space, config, device)

    # -- the protocol -----------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The actor, the critics and their target copy."""
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    @property
    def alpha(self) -> float:
        """The current temperature."""
        return float(self.log_alpha.detach().exp())

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Squashed samples (``deterministic``: ``tanh(mean)``) scaled to the Box; uniformly
        random actions before the first update, as in the warm-up of the original method."""
        with torch.inference_mode():
            obs = obs.to(self.device)
            if deterministic:
                actions = torch.tanh(self.actor(obs)[0])
            elif not self._warm:
                shape = (obs.shape[0], self.scale.size)
                actions = torch.rand(shape, generator=self.generator, device=self.device) * 2 - 1
            else:
                actions = self.actor.sample(obs, self.generator)[0]
        return ActOutput(self.scale.to_env(actions), {}, state)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """``min Q(obs, tanh(mean))`` (the trainer does not call it for replay)."""
        with torch.inference_mode():
            obs = obs.to(self.device)
            q1, q2 = self.critic(obs, torch.tanh(self.actor(obs)[0]))
        return torch.minimum(q1, q2)

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """One critic, actor and temperature step; Polyak update of the target critics."""
        c = self.config
        self._warm = True
        for opt in (self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer):
            if opt is not None:
                opt.set_progress(progress)
        if self.replay is not None:
            self.replay.progress = progress
        obs, nxt = batch["observations"], batch["next_observations"]
        actions = self.scale.from_env(batch["actions"])
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_actions, next_logp = self.actor.sample(nxt, self.generator)
            t1, t2 = self.critic_target(nxt, next_actions)
            soft = torch.minimum(t1, t2) - alpha * next_logp
            not_done = (~batch["terminals"]).float()
            target = batch["rewards"].float() + discounts(batch, c.gamma) * not_done * soft
        q1, q2 = self.critic(obs, actions)
        weights = batch.get("weights")
        err1, err2 = (q1 - target).pow(2), (q2 - target).pow(2)
        if weights is not None:
            err1, err2 = err1 * weights, err2 * weights
        critic_loss = 0.5 * (err1.mean() + err2.mean())
        self.critic_optimizer.optimizer.zero_grad(set_to_none=True)  # drop the actor's
        self.critic_optimizer.backward(critic_loss)
        self.critic_optimizer.step()
        if self.replay is not None and "indices" in batch.info:
            self.replay.update_priorities(batch.info["indices"], (q1 - target).detach())

        new_actions, logp = self.actor.sample(obs, self.generator)
        p1, p2 = self.critic(obs, new_actions)
        actor_loss = (alpha * logp - torch.minimum(p1, p2)).mean()
        self.actor_optimizer.backward(actor_loss)
        self.actor_optimizer.step()

        metrics = {
            "loss/critic": float(critic_loss.detach()),
            "loss/actor": float(actor_loss.detach()),
            "train/entropy": float(-logp.detach().mean()),
        }
        if self.alpha_optimizer is not None:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.backward(alpha_loss)
            self.alpha_optimizer.step()
            metrics["loss/alpha"] = float(alpha_loss.detach())
        polyak_update(self.critic_target, self.critic, c.tau)
        self.num_updates += 1
        metrics["train/alpha"] = self.alpha
        return metrics

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizers, temperature, generator and update count."""
        return {
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": (
                self.alpha_optimizer.state_dict() if self.alpha_optimizer is not None else None
            ),
            "log_alpha": self.log_alpha.detach().clone(),
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
            "warm": self._warm,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.alpha_optimizer is not None and state["alpha_optimizer"] is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])
        self._warm = bool(state["warm"])
