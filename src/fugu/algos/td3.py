"""TD3: twin delayed deep deterministic policy gradients (SAC's deterministic sibling).

Read top to bottom: :class:`TD3Config`, then :class:`TD3`, a ``replay`` algorithm of the
:class:`~fugu.algos.base.Algorithm` protocol for Box actions. A deterministic tanh actor acts
with Gaussian exploration noise; the twin critics regress
``r + discount (1 - terminal) min Q_target(s', clip(pi_target(s') + clip(noise)))`` (target
policy smoothing); the actor and the target networks are updated every ``policy_delay`` critic
steps (delayed updates). Truncated transitions bootstrap from their final observation.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models.policy import PolicyConfig
    >>> algo = TD3.build(TD3Config(hidden_sizes=(16,)), spaces.Box(-1, 1, (3,)),
    ...                  spaces.Box(0, 1, (2,)), PolicyConfig())
    >>> actions = algo.act(torch.zeros(4, 3), None, {}, deterministic=True).actions
    >>> actions.shape, bool(((actions >= 0) & (actions <= 1)).all())
    (torch.Size([4, 2]), True)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

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

__all__ = ["TD3", "DeterministicActor", "TD3Config"]


@dataclass(frozen=True)
class TD3Config:
    """Hyperparameters of TD3 (noise scales are in ``[-1, 1]`` action units).

    Example:
        >>> TD3Config().policy_delay
        2
    """

    learning_rate: float = 1e-3
    """Adam step size of the actor and the critics."""
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
    """Polyak rate of the target networks."""
    policy_delay: int = 2
    """Critic steps per actor (and target) update."""
    exploration_noise: float = 0.1
    """Standard deviation of the Gaussian noise added to actions while collecting."""
    target_noise: float = 0.2
    """Standard deviation of the target policy smoothing noise."""
    target_noise_clip: float = 0.5
    """Clip of the target policy smoothing noise."""
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
    """Seed of the generator of exploration and smoothing noise."""

    def __post_init__(self) -> None:
        check_replay_config(self, "TD3Config")
        if self.lr_schedule not in SCHEDULES:
            raise APIUsageError(f"TD3Config.lr_schedule must be one of {SCHEDULES}")
        if not 0.0 < self.tau <= 1.0:
            raise APIUsageError(f"TD3Config.tau must lie in (0, 1], got {self.tau}")
        if self.policy_delay < 1:
            raise APIUsageError("TD3Config.policy_delay must be >= 1")
        if min(self.exploration_noise, self.target_noise, self.target_noise_clip) < 0:
            raise APIUsageError("TD3Config noise scales must be >= 0")


class DeterministicActor(nn.Module):
    """``tanh(mlp(obs))``: actions in ``[-1, 1]``."""

    def __init__(
        self, obs_size: int, action_size: int, hidden_sizes: tuple[int, ...], activation: str
    ) -> None:
        super().__init__()
        self.net = mlp(obs_size, hidden_sizes, action_size, activation)

    def forward(self, obs: Tensor) -> Tensor:
        """Actions ``[B, action_size]`` in ``[-1, 1]``."""
        return torch.tanh(self.net(obs.reshape(obs.shape[0], -1).float()))


class TD3(ReplayAlgorithm):
    """Twin Delayed DDPG on Box actions.

    Args:
        actor: The deterministic actor (its target copy is made here).
        critic: The twin critics (their target copy is made here).
        action_space: The env's Box (actions are scaled to its bounds).
        config: Hyperparameters.
        device: Where the networks and the update run.
    """

    name: ClassVar[str] = "td3"
    config_type: ClassVar[type] = TD3Config
    collection: ClassVar[Collection] = "replay"
    action_spaces: ClassVar[tuple[str, ...]] = ("box",)
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/critic",
        "loss/actor",
        "loss/q_mean",
        "train/replay_size",
    )

    def __init__(
        self,
        actor: DeterministicActor,
        critic: TwinQ,
        action_space: spaces.Box,
        config: TD3Config | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config = config or TD3Config()
        self.device = torch.device(device)
        self.actor = actor.to(self.device)
        self.actor_target = copy.deepcopy(self.actor)  # never in an optimizer; used under no_grad
        self.critic = critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic)  # never in an optimizer; used under no_grad
        self.scale = BoxScale(action_space, self.device)
        options: dict[str, Any] = {
            "learning_rate": config.learning_rate,
            "lr_schedule": config.lr_schedule,
            "max_grad_norm": config.max_grad_norm,
            "device": self.device,
            "foreach": True,
        }
        self.actor_optimizer = Optimizer(self.actor.parameters(), **options)
        self.critic_optimizer = Optimizer(self.critic.parameters(), **options)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.num_updates = 0
        self.replay: ReplayBuffer | None = None
        self._warm = False
        self._last_actor_loss = 0.0

    @classmethod
    def build(
        cls,
        config: TD3Config,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> TD3:
        """A TD3 with new networks for these spaces (``[td3]`` sets their architecture; the
        ``[policy]`` section is not used)."""
        check_action_space(cls, action_space)
        assert isinstance(action_space, spaces.Box)
        obs_size, act_size = flat_size(observation_space.shape), flat_size(action_space.shape)
        hidden = tuple(config.hidden_sizes)
        actor = DeterministicActor(obs_size, act_size, hidden, config.activation)
        critic = TwinQ(obs_size, act_size, hidden, config.activation)
        return cls(actor, critic, action_space, config, device)

    # -- the protocol -----------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The actor, the critics and their target copies."""
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """The actor's actions plus exploration noise (none when ``deterministic``), clipped
        and scaled to the Box; uniformly random before the first update."""
        with torch.inference_mode():
            obs = obs.to(self.device)
            shape = (obs.shape[0], self.scale.size)
            if deterministic:
                actions = self.actor(obs)
            elif not self._warm:
                actions = torch.rand(shape, generator=self.generator, device=self.device) * 2 - 1
            else:
                noise = torch.randn(shape, generator=self.generator, device=self.device)
                actions = (self.actor(obs) + self.config.exploration_noise * noise).clamp(-1, 1)
        return ActOutput(self.scale.to_env(actions), {}, state)

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """``min Q(obs, pi(obs))`` (the trainer does not call it for replay)."""
        with torch.inference_mode():
            obs = obs.to(self.device)
            q1, q2 = self.critic(obs, self.actor(obs))
        return torch.minimum(q1, q2)

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """One critic step; every ``policy_delay`` steps an actor step and target updates."""
        c = self.config
        self._warm = True
        self.actor_optimizer.set_progress(progress)
        self.critic_optimizer.set_progress(progress)
        if self.replay is not None:
            self.replay.progress = progress
        obs, nxt = batch["observations"], batch["next_observations"]
        actions = self.scale.from_env(batch["actions"])
        with torch.no_grad():
            next_actions = self.actor_target(nxt)
            noise = torch.randn(next_actions.shape, generator=self.generator, device=self.device)
            noise = (c.target_noise * noise).clamp(-c.target_noise_clip, c.target_noise_clip)
            next_actions = (next_actions + noise).clamp(-1, 1)
            t1, t2 = self.critic_target(nxt, next_actions)
            not_done = (~batch["terminals"]).float()
            target = batch["rewards"].float() + discounts(batch, c.gamma) * not_done * (
                torch.minimum(t1, t2)
            )
        q1, q2 = self.critic(obs, actions)
        err1, err2 = (q1 - target).pow(2), (q2 - target).pow(2)
        weights = batch.get("weights")
        if weights is not None:
            err1, err2 = err1 * weights, err2 * weights
        critic_loss = err1.mean() + err2.mean()
        self.critic_optimizer.optimizer.zero_grad(set_to_none=True)  # drop the actor's
        self.critic_optimizer.backward(critic_loss)
        self.critic_optimizer.step()
        if self.replay is not None and "indices" in batch.info:
            self.replay.update_priorities(batch.info["indices"], (q1 - target).detach())
        self.num_updates += 1
        if self.num_updates % c.policy_delay == 0:
            actor_loss = -self.critic(obs, self.actor(obs))[0].mean()
            self.actor_optimizer.backward(actor_loss)
            self.actor_optimizer.step()
            self._last_actor_loss = float(actor_loss.detach())
            polyak_update(self.critic_target, self.critic, c.tau)
            polyak_update(self.actor_target, self.actor, c.tau)
        return {
            "loss/critic": float(critic_loss.detach()),
            "loss/actor": self._last_actor_loss,
            "loss/q_mean": float(q1.detach().mean()),
        }

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizers, generator and update count."""
        return {
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
            "warm": self._warm,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"])
        self.num_updates = int(state["num_updates"])
        self._warm = bool(state["warm"])
