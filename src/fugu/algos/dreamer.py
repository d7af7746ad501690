"""Dreamer-lite: a DreamerV3-style agent on a small world model, as a ``replay`` algorithm.

Hafner et al. (2023), "Mastering Diverse Domains through World Models", scaled down for a CPU.
Read top to bottom: :class:`DreamerConfig` (every knob), :func:`lambda_returns`, the actor,
then :class:`Dreamer`, the :class:`~fugu.algos.base.Algorithm` the trainer drives.

- **Data.** The trainer's rollouts go into a :class:`~fugu.buffers.sequence.SequenceReplay`
  (one timeline per row), sampled as ``batch_size`` windows of ``seq_len`` steps.
- **World model** (:class:`fugu.models.world.WorldModel`): RSSM with categorical latents,
  symlog reconstruction (or pixels through a CNN, chosen from the observation space), two-hot
  reward head, continue head, KL balancing with free bits.
- **Behaviour.** From the posterior states of a replayed batch (``imag_starts`` of them), the
  actor acts for ``imag_horizon`` steps in the RSSM's prior; the reward and continue heads
  score the steps and the critic (a two-hot head over symlog returns, regularised towards a
  slow EMA copy of itself) bootstraps TD(lambda) returns. Returns are normalised as DreamerV3
  does: divided by ``max(1, S)``, ``S`` an EMA of the batch's 95th minus 5th percentile. The
  actor (tanh-squashed Gaussian) maximises them by backpropagating through the learned
  dynamics, plus an entropy bonus.
- **Pacing.** ``train_ratio`` replayed steps per env step: each trainer epoch runs as many
  updates (world model + behaviour) as the env steps collected since ``learning_starts``
  have earned (zero or more), whatever ``train.num_steps`` and the number of envs are.
- **Acting.** The recurrent state ``(h, [z, previous action])`` is filtered with every
  observation; before the first update actions are uniformly random.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models.policy import PolicyConfig
    >>> algo = Dreamer.build(DreamerConfig(deter=16, hidden=16, embed=16, groups=2, classes=4),
    ...                      spaces.Box(-1, 1, (3,)), spaces.Box(-2, 2, (1,)), PolicyConfig())
    >>> out = algo.act(torch.zeros(4, 3), algo.initial_state(4), {})
    >>> out.actions.shape, out.state[0].shape
    (torch.Size([4, 1]), torch.Size([4, 16]))
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu.algos.base import ActOutput, Collection, ReplaySettings, check_action_space
from fugu.algos.offpolicy import BoxScale
from fugu.buffers import Batch, PolicyState, torch_dtype
from fugu.buffers.sequence import SequenceReplay
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.models.optim import Optimizer
from fugu.models.policy import PolicyConfig
from fugu.models.world import TwoHot, WorldModel, WorldModelConfig, zero_head

__all__ = ["Dreamer", "DreamerConfig", "lambda_returns"]


@dataclass(frozen=True)
class DreamerConfig:
    """Hyperparameters of Dreamer-lite (sizes far below DreamerV3's 12M-parameter model).

    Example:
        >>> DreamerConfig().world.deter
        128
    """

    deter: int = 128
    """Size of the RSSM's deterministic (GRU) state."""
    groups: int = 8
    """Categorical latents of the stochastic state."""
    classes: int = 8
    """Classes of each categorical latent."""
    hidden: int = 128
    """Width of every MLP (encoder, heads, actor, critic)."""
    embed: int = 128
    """Size of the observation embedding."""
    cnn_depth: int = 16
    """Channels of the first convolution of the pixel encoder (image observations only)."""
    free_bits: float = 1.0
    """KL below this many nats is not penalised."""
    unimix: float = 0.01
    """Uniform mixture of the latents' categoricals."""
    batch_size: int = 16
    """Replayed windows per update."""
    seq_len: int = 32
    """Steps per replayed window."""
    imag_horizon: int = 15
    """Imagined steps from each start state."""
    imag_starts: int = 128
    """Start states of imagination, drawn from the ``batch_size * seq_len`` posterior states
    (``0``: all of them). Fewer make the behaviour update proportionally cheaper."""
    gamma: float = 0.985
    """Discount factor."""
    lam: float = 0.95
    """Lambda of the TD(lambda) returns."""
    entropy_coef: float = 3e-4
    """Weight of the actor's entropy bonus (on normalised returns)."""
    model_lr: float = 6e-4
    """Adam step size of the world model."""
    actor_lr: float = 2e-4
    """Adam step size of the actor."""
    critic_lr: float = 2e-4
    """Adam step size of the critic."""
    slow_critic_rate: float = 0.02
    """EMA rate of the slow critic that regularises the critic."""
    return_decay: float = 0.99
    """EMA decay of the return percentile range ``S``."""
    learning_starts: int = 1000
    """Steps in the replay before the first update (random actions until then)."""
    train_ratio: float = 40.0
    """Replayed steps (``batch_size * seq_len`` per update) per env step collected."""
    buffer_size: int = 1_000_000
    """Steps the replay keeps, over all rows."""
    checkpoint_replay: bool = True
    """Save the replay in checkpoints (without it, resume refills it first)."""
    seed: int = 0
    """Seed of the latents', actions' and imagination's noise."""

    def __post_init__(self) -> None:
        for name in ("deter", "groups", "classes", "hidden", "embed", "batch_size", "seq_len",
                     "imag_horizon", "buffer_size", "cnn_depth"):  # fmt: skip
            if getattr(self, name) < 1:
                raise APIUsageError(f"DreamerConfig.{name} must be >= 1")
        if self.train_ratio <= 0 or self.learning_starts < 0 or self.imag_starts < 0:
            raise APIUsageError(
                "DreamerConfig needs train_ratio > 0, learning_starts >= 0, imag_starts >= 0"
            )
        if not (0 < self.gamma <= 1 and 0 <= self.lam <= 1):
            raise APIUsageError("DreamerConfig needs gamma in (0, 1] and lam in [0, 1]")

    @property
    def world(self) -> WorldModelConfig:
        """The world model's sizes."""
        return WorldModelConfig(
            deter=self.deter, groups=self.groups, classes=self.classes, hidden=self.hidden,
            embed=self.embed, unimix=self.unimix, free_bits=self.free_bits,
            cnn_depth=self.cnn_depth,
        )  # fmt: skip


def lambda_returns(rewards: Tensor, values: Tensor, discounts: Tensor, lam: float) -> Tensor:
    """TD(lambda) returns ``R_t = r_t + d_t ((1 - lam) v_{t+1} + lam R_{t+1})``.

    Args:
        rewards: ``[H, N]`` rewards of steps ``1..H``.
        values: ``[H + 1, N]`` values of states ``0..H`` (``values[H]`` bootstraps).
        discounts: ``[H, N]`` ``gamma * continue`` of steps ``1..H``.
        lam: The lambda.

    Returns:
        ``[H, N]`` returns of states ``0..H-1``.

    Example:
        >>> r = torch.ones(3, 1); v = torch.zeros(4, 1); d = torch.full((3, 1), 0.5)
        >>> lambda_returns(r, v, d, lam=1.0).squeeze(1).tolist()
        [1.75, 1.5, 1.0]
    """
    out = []
    last = values[-1]
    for t in reversed(range(rewards.shape[0])):
        last = rewards[t] + discounts[t] * ((1 - lam) * values[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.LayerNorm(hidden), nn.SiLU(),
        nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.SiLU(),
        nn.Linear(hidden, outputs),
    )  # fmt: skip


class DreamerActor(nn.Module):
    """A tanh-squashed Gaussian policy on model features, std in ``[0.1, 1]``."""

    def __init__(self, feat: int, action_size: int, hidden: int) -> None:
        super().__init__()
        self.net = _mlp(feat, hidden, 2 * action_size)

    def forward(
        self, feat: Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised action in ``[-1, 1]`` and the pre-squash Gaussian's entropy
        (up to a constant)."""
        mean, raw = self.net(feat).chunk(2, -1)
        std = 0.1 + 0.9 * torch.sigmoid(raw + 2.0)
        if deterministic:
            return torch.tanh(mean), torch.log(std).sum(-1)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return torch.tanh(mean + std * noise), torch.log(std).sum(-1)


class Dreamer:
    """Dreamer-lite on Box actions (vector or ``uint8`` image observations).

    Args:
        observation_space: The env's single observation space.
        action_space: The env's Box (actions are scaled from ``[-1, 1]`` to its bounds).
        config: Hyperparameters.
        device: Where the networks and the updates run.
    """

    name: ClassVar[str] = "dreamer"
    config_type: ClassVar[type] = DreamerConfig
    collection: ClassVar[Collection] = "replay"
    action_spaces: ClassVar[tuple[str, ...]] = ("box",)
    dashboard_metrics: ClassVar[tuple[str, ...]] = (
        "loss/world",
        "loss/reward",
        "loss/actor",
        "loss/critic",
        "train/imag_return",
        "train/return_scale",
        "train/updates",
    )

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        config: DreamerConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = cfg = config or DreamerConfig()
        self.device = torch.device(device)
        self.scale = BoxScale(action_space, self.device)
        self.action_size = self.scale.size
        self.obs_shape = tuple(int(s) for s in observation_space.shape)
        dtype = torch_dtype(observation_space.dtype)
        self.world = WorldModel(self.obs_shape, self.action_size, cfg.world, dtype).to(self.device)
        feat = self.world.feat_dim
        self.actor = DreamerActor(feat, self.action_size, cfg.hidden).to(self.device)
        self.critic = _mlp(feat, cfg.hidden, TwoHot().bins).to(self.device)
        zero_head(self.critic)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.twohot = TwoHot()
        common: dict[str, Any] = {"device": self.device, "foreach": True}
        self.world_optimizer = Optimizer(
            self.world.parameters(), learning_rate=cfg.model_lr, max_grad_norm=1000.0, **common
        )
        self.actor_optimizer = Optimizer(
            self.actor.parameters(), learning_rate=cfg.actor_lr, adam_eps=1e-5,
            max_grad_norm=100.0, **common,
        )  # fmt: skip
        self.critic_optimizer = Optimizer(
            self.critic.parameters(), learning_rate=cfg.critic_lr, adam_eps=1e-5,
            max_grad_norm=100.0, **common,
        )  # fmt: skip
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.return_scale = 1.0
        self.num_updates = 0
        self.start_added: int | None = None  # replay.num_added at the first update
        self.replay: SequenceReplay | None = None
        self._warm = False

    @classmethod
    def build(
        cls,
        config: DreamerConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> Dreamer:
        """A Dreamer for these spaces (``[dreamer]`` sets the sizes; ``[policy]`` is unused)."""
        check_action_space(cls, action_space)
        assert isinstance(action_space, spaces.Box)
        return cls(observation_space, action_space, config, device)

    # -- the replay -------------------------------------------------------------------------
    def replay_settings(self) -> ReplaySettings:
        """One trainer update call per epoch (:meth:`update` paces itself by ``train_ratio``)."""
        c = self.config
        return ReplaySettings(c.buffer_size, c.batch_size, 1, c.learning_starts,
                              c.checkpoint_replay)  # fmt: skip

    def make_replay(
        self, fields: Mapping[str, Field], num_rows: int, env: Any, seed: int
    ) -> SequenceReplay:
        """A :class:`~fugu.buffers.sequence.SequenceReplay` of ``seq_len`` windows."""
        obs = fields["observations"]
        self.replay = SequenceReplay(
            tuple(obs.shape), torch_dtype(obs.dtype), self.action_size, self.config.buffer_size,
            num_rows, self.config.seq_len, seed, self.device, self.scale.from_env,
        )  # fmt: skip
        return self.replay

    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """Nothing besides the standard transition."""
        return {}

    # -- acting -----------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The world model, actor, critic and slow critic."""
        return {"world": self.world, "actor": self.actor, "critic": self.critic,
                "slow_critic": self.slow_critic}  # fmt: skip

    def initial_state(self, num_rows: int) -> PolicyState:
        """Zero ``(h, [z, previous action])``."""
        h, z = self.world.rssm.initial(num_rows)
        za = torch.cat([z, torch.zeros(num_rows, self.action_size)], -1)
        return h.to(self.device), za.to(self.device)

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """Zero the rows that start an episode."""
        assert state is not None
        keep = (~starts.to(self.device)).float().unsqueeze(-1)
        return state[0] * keep, state[1] * keep

    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Filter ``obs`` into the state and act (uniformly random before the first update,
        unless ``deterministic``, which takes the posterior's mode and acts ``tanh(mean)``)."""
        with torch.inference_mode():
            obs = obs.to(self.device)
            rows = obs.shape[0]
            if state is None:
                state = self.initial_state(rows)
            h, za = state
            z, prev = za[:, : self.world.rssm.stoch], za[:, self.world.rssm.stoch :]
            embed = self.world.encoder(self.world.preprocess(obs))
            h, z, post, _ = self.world.rssm.obs_step(h, z, prev, embed, self.generator)
            if deterministic:  # the posterior's mode: acting is a function of obs and state
                z = self.world.rssm.mode(post)
            if self._warm or deterministic:
                feat = self.world.rssm.feature(h, z)
                actions, _ = self.actor(feat, self.generator, deterministic)
            else:
                shape = (rows, self.action_size)
                actions = torch.rand(shape, generator=self.generator, device=self.device) * 2 - 1
        return ActOutput(self.scale.to_env(actions), {}, (h, torch.cat([z, actions], -1)))

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Not used by replay collection (zeros)."""
        return torch.zeros(obs.shape[0], device=self.device)

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """The updates the collected env steps have earned (``batch`` is the first one's data;
        the others are sampled from the replay). Returns their mean metrics."""
        cfg = self.config
        self._warm = True
        count = 1
        if self.replay is not None:
            if self.start_added is None:
                self.start_added = self.replay.num_added
            earned = (self.replay.num_added - self.start_added) * cfg.train_ratio
            count = 1 + int(earned // (cfg.batch_size * cfg.seq_len)) - self.num_updates
        totals: dict[str, float] = {}
        for k in range(count):
            if k > 0:
                assert self.replay is not None
                batch = self.replay.sample(cfg.batch_size)
            for key, value in self._update_once(batch).items():
                totals[key] = totals.get(key, 0.0) + value
        metrics = {key: value / max(count, 1) for key, value in totals.items()}
        metrics["train/updates"] = float(self.num_updates)
        return metrics

    def _update_once(self, batch: Batch) -> dict[str, float]:
        metrics, h, z = self._train_world(batch)
        metrics.update(self._train_behaviour(h, z))
        self.num_updates += 1
        return metrics

    def _train_world(self, batch: Batch) -> tuple[dict[str, float], Tensor, Tensor]:
        loss, parts, h, z = self.world.loss(
            batch["observations"], batch["actions"], batch["rewards"], batch["conts"],
            batch["firsts"], self.generator,
        )  # fmt: skip
        self.world_optimizer.backward(loss)
        self.world_optimizer.step()
        metrics = {
            "loss/world": float(loss.detach()),
            "loss/recon": parts["world/recon"],
            "loss/reward": parts["world/reward"],
            "loss/cont": parts["world/cont"],
            "train/kl_dyn": parts["world/kl_dyn"],
            "train/kl_rep": parts["world/kl_rep"],
        }
        return metrics, h, z

    def _train_behaviour(self, h: Tensor, z: Tensor) -> dict[str, float]:
        cfg, rssm = self.config, self.world.rssm
        h, z = h.reshape(-1, h.shape[-1]), z.reshape(-1, z.shape[-1])
        if 0 < cfg.imag_starts < h.shape[0]:
            pick = torch.randperm(h.shape[0], generator=self.generator, device=self.device)
            h, z = h[pick[: cfg.imag_starts]], z[pick[: cfg.imag_starts]]
        self.world.requires_grad_(False)
        feats, entropies = [rssm.feature(h, z)], []
        for _ in range(cfg.imag_horizon):
            action, entropy = self.actor(feats[-1].detach(), self.generator)
            h, z, _ = rssm.img_step(h, z, action, self.generator)
            feats.append(rssm.feature(h, z))
            entropies.append(entropy)
        feat = torch.stack(feats)  # [H + 1, N, F]
        reward = self.twohot.decode(self.world.reward_head(feat[1:]))
        cont = torch.sigmoid(self.world.cont_head(feat[1:]).squeeze(-1))
        self.world.requires_grad_(True)
        self.critic.requires_grad_(False)
        value = self.twohot.decode(self.critic(feat))
        self.critic.requires_grad_(True)
        returns = lambda_returns(reward, value, cfg.gamma * cont, cfg.lam)
        weight = torch.cumprod(
            torch.cat([torch.ones_like(cont[:1]), cfg.gamma * cont[:-1]]), 0
        ).detach()
        bounds = torch.quantile(returns.detach(), torch.tensor([0.05, 0.95], device=self.device))
        decay = cfg.return_decay
        self.return_scale = decay * self.return_scale + (1 - decay) * float(bounds[1] - bounds[0])
        scale = max(1.0, self.return_scale)
        entropy = torch.stack(entropies)
        actor_loss = -(weight * (returns / scale + cfg.entropy_coef * entropy)).mean()
        self.actor_optimizer.backward(actor_loss)
        self.actor_optimizer.step()
        target = returns.detach()
        inputs = feat[:-1].detach()
        logits = self.critic(inputs)
        with torch.no_grad():
            slow = self.twohot.decode(self.slow_critic(inputs))
        critic_loss = (
            weight * (self.twohot.loss(logits, target) + self.twohot.loss(logits, slow))
        ).mean()
        self.critic_optimizer.backward(critic_loss)
        self.critic_optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.slow_critic.parameters()),
                                 list(self.critic.parameters()), cfg.slow_critic_rate)  # fmt: skip
        return {
            "loss/actor": float(actor_loss.detach()),
            "loss/critic": float(critic_loss.detach()),
            "train/imag_return": float(target.mean()),
            "train/return_scale": self.return_scale,
            "train/entropy": float(entropy.detach().mean()),
        }

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizers, generator, return scale and counters (the weights are modules)."""
        return {
            "world_optimizer": self.world_optimizer.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "return_scale": self.return_scale,
            "num_updates": self.num_updates,
            "start_added": self.start_added,
            "warm": self._warm,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.world_optimizer.load_state_dict(state["world_optimizer"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.generator.set_state(state["generator"])
        self.return_scale = float(state["return_scale"])
        self.num_updates = int(state["num_updates"])
        start = state["start_added"]
        self.start_added = None if start is None else int(start)
        self._warm = bool(state["warm"])
