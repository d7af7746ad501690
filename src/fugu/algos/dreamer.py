"""Dreamer-lite: a DreamerV3-style agent on a small world model (continuous actions).

The world model (:class:`fugu.models.world.WorldModel`) learns from replayed sequences; the
actor and critic learn only from imagined rollouts: from every posterior state of a replayed
batch, the actor acts for ``imag_horizon`` steps in the RSSM's prior, the reward and continue
heads score the steps and the critic (a two-hot head over symlog returns, regularised towards a
slow EMA copy of itself) bootstraps lambda-returns. Returns are normalised as DreamerV3 does:
divided by ``max(1, S)`` where ``S`` is an EMA of the 95th minus the 5th percentile of the
batch's returns. The actor (tanh-squashed Gaussian) maximises the normalised returns by
backpropagating through the learned dynamics, plus an entropy bonus.

This is an agent object with its own loop (:meth:`DreamerAgent.learn`), not yet a trainer
algorithm.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu.core.errors import APIUsageError
from fugu.models.world import TwoHot, WorldModel, WorldModelConfig, zero_head

__all__ = ["DreamerAgent", "DreamerConfig", "lambda_returns"]


@dataclass(frozen=True)
class DreamerConfig:
    """Hyperparameters of Dreamer-lite."""

    world: WorldModelConfig = field(default_factory=WorldModelConfig)
    batch_size: int = 16
    seq_len: int = 32
    imag_horizon: int = 15
    gamma: float = 0.985
    lam: float = 0.95
    entropy: float = 3e-4
    model_lr: float = 1e-3
    actor_lr: float = 1e-4
    critic_lr: float = 1e-4
    slow_critic: float = 0.02
    return_ema: float = 0.99
    warmup: int = 1000
    train_every: int = 5
    capacity: int = 1_000_000


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


class _Actor(nn.Module):
    def __init__(self, feat: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feat, hidden), nn.LayerNorm(hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * action_dim),
        )  # fmt: skip

    def forward(
        self, feat: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """A reparameterised tanh-Gaussian action in ``[-1, 1]`` and the Gaussian's entropy."""
        mean, raw = self.net(feat).chunk(2, -1)
        std = 0.1 + 0.9 * torch.sigmoid(raw + 2.0)
        noise = torch.randn(mean.shape, generator=generator)
        action = torch.tanh(mean + std * noise)
        entropy = torch.log(std).sum(-1)
        return action, entropy


class DreamerAgent:
    """Dreamer-lite on a one-row fugu env with a Box action space.

    Args:
        env: The env (``num_envs=1``); actions are scaled from ``[-1, 1]`` to its Box.
        config: Hyperparameters.
        seed: Seed of the weights, the replay sampler and all noise.
    """

    def __init__(self, env: Any, config: DreamerConfig | None = None, seed: int = 0) -> None:
        space = env.single_action_space
        if not isinstance(space, spaces.Box) or env.num_agents != 1:
            raise APIUsageError("Dreamer-lite needs a one-row env with a Box action space")
        self.env = env
        self.cfg = cfg = config or DreamerConfig()
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.obs_dim = int(np.prod(env.single_observation_space.shape))
        self.action_dim = int(np.prod(space.shape))
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.world = WorldModel(self.obs_dim, self.action_dim, cfg.world)
        feat = self.world.feat_dim
        self.actor = _Actor(feat, self.action_dim, cfg.world.hidden)
        self.critic = nn.Sequential(
            nn.Linear(feat, cfg.world.hidden), nn.LayerNorm(cfg.world.hidden), nn.SiLU(),
            nn.Linear(cfg.world.hidden, TwoHot().bins),
        )  # fmt: skip
        zero_head(self.critic)
        self.slow = copy.deepcopy(self.critic).requires_grad_(False)
        self.twohot = TwoHot()
        self.opt_world = torch.optim.Adam(self.world.parameters(), lr=cfg.model_lr, eps=1e-8)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, eps=1e-5)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, eps=1e-5)
        self.return_scale = 1.0
        # the replay: one timeline; step t holds obs_t, the action before it, reward, flags
        self.obs: list[np.ndarray] = []
        self.prev_actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.firsts: list[bool] = []
        self.conts: list[float] = []
        self.steps = 0
        self.updates = 0
        self._h, self._z = self.world.rssm.initial(1)

    # -- replay -----------------------------------------------------------------------------
    def _store(self, obs: np.ndarray, prev_action: np.ndarray, reward: float, first: bool,
               cont: float) -> None:  # fmt: skip
        self.obs.append(np.asarray(obs, np.float32).reshape(self.obs_dim))
        self.prev_actions.append(np.asarray(prev_action, np.float32).reshape(self.action_dim))
        self.rewards.append(float(reward))
        self.firsts.append(bool(first))
        self.conts.append(float(cont))

    def sample(self) -> dict[str, Tensor]:
        """``batch_size`` random windows of ``seq_len`` steps from the replay."""
        n, length = len(self.obs), self.cfg.seq_len
        if n < length:
            raise APIUsageError(f"the replay holds {n} steps, fewer than seq_len={length}")
        starts = self.rng.integers(0, n - length + 1, self.cfg.batch_size)
        idx = starts[:, None] + np.arange(length)[None]
        firsts = np.asarray(self.firsts)[idx]
        firsts[:, 0] = True  # every window starts from a reset state
        return {
            "obs": torch.as_tensor(np.stack(self.obs)[idx]),
            "actions": torch.as_tensor(np.stack(self.prev_actions)[idx]),
            "rewards": torch.as_tensor(np.asarray(self.rewards, np.float32)[idx]),
            "conts": torch.as_tensor(np.asarray(self.conts, np.float32)[idx]),
            "firsts": torch.as_tensor(firsts),
        }

    # -- learning -----------------------------------------------------------------------------
    def train_world(self, batch: dict[str, Tensor]) -> tuple[dict[str, float], Tensor, Tensor]:
        """One world-model step; the posterior states ``(h, z)`` for imagination."""
        loss, metrics, h, z = self.world.loss(
            batch["obs"], batch["actions"], batch["rewards"], batch["conts"], batch["firsts"],
            self.generator,
        )  # fmt: skip
        self.opt_world.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.world.parameters(), 1000.0)
        self.opt_world.step()
        metrics["world/loss"] = float(loss.detach())
        return metrics, h, z

    def train_behaviour(self, h: Tensor, z: Tensor) -> dict[str, float]:
        """Actor and critic on rollouts imagined from the flattened start states."""
        cfg = self.cfg
        rssm = self.world.rssm
        h, z = h.reshape(-1, h.shape[-1]), z.reshape(-1, z.shape[-1])
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
        value = self.twohot.decode(self.critic(feat))
        returns = lambda_returns(reward, value, cfg.gamma * cont, cfg.lam)
        weight = torch.cumprod(
            torch.cat([torch.ones_like(cont[:1]), cfg.gamma * cont[:-1]]), 0
        ).detach()
        lo, hi = torch.quantile(returns.detach(), torch.tensor([0.05, 0.95]))
        m = cfg.return_ema
        self.return_scale = m * self.return_scale + (1 - m) * float(hi - lo)
        scale = max(1.0, self.return_scale)
        actor_loss = -(weight * (returns / scale + cfg.entropy * torch.stack(entropies))).mean()
        self.opt_actor.zero_grad(set_to_none=True)
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), 100.0)
        self.opt_actor.step()
        target = returns.detach()
        logits = self.critic(feat[:-1].detach())
        slow = self.twohot.decode(self.slow(feat[:-1].detach()))
        critic_loss = (
            weight * (self.twohot.loss(logits, target) + self.twohot.loss(logits, slow))
        ).mean()
        self.opt_critic.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), 100.0)
        self.opt_critic.step()
        with torch.no_grad():
            for p, q in zip(self.slow.parameters(), self.critic.parameters(), strict=True):
                p.lerp_(q, cfg.slow_critic)
        return {
            "actor/loss": float(actor_loss.detach()),
            "critic/loss": float(critic_loss.detach()),
            "imag/return": float(returns.detach().mean()),
            "imag/scale": self.return_scale,
        }

    def update(self) -> dict[str, float]:
        """One world-model step and one behaviour step on a fresh batch."""
        metrics, h, z = self.train_world(self.sample())
        metrics.update(self.train_behaviour(h, z))
        self.updates += 1
        return metrics

    # -- acting -------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray, prev_action: np.ndarray, first: bool) -> np.ndarray:
        """Filter the observation into the online state and sample an action in ``[-1, 1]``."""
        if first:
            self._h, self._z = self.world.rssm.initial(1)
        rssm = self.world.rssm
        x = torch.as_tensor(np.asarray(obs, np.float32).reshape(1, -1))
        embed = self.world.encoder(torch.sign(x) * torch.log1p(x.abs()))
        a = torch.zeros(1, self.action_dim) if first else torch.as_tensor(prev_action[None])
        h = rssm.gru(rssm.inp(torch.cat([self._z, a], -1)), self._h)
        post = rssm._logits(rssm.post_net(torch.cat([h, embed], -1)))
        self._h, self._z = h, rssm.sample(post, self.generator)
        action, _ = self.actor(rssm.feature(self._h, self._z), self.generator)
        return action[0].numpy()

    def learn(
        self, steps: int, on_episode: Callable[[int, float], None] | None = None
    ) -> list[float]:
        """Collect ``steps`` env steps, updating every ``train_every`` after ``warmup``."""
        env, cfg = self.env, self.cfg
        returns: list[float] = []
        prev = np.zeros(self.action_dim, np.float32)
        first, reward, episode_return = True, 0.0, 0.0
        for _ in range(steps):
            obs = env.observations[0].copy()
            self._store(obs, prev, reward, first, 1.0)
            if self.steps < cfg.warmup:
                action = self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
            else:
                action = self.act(obs, prev, first)
            scaled = self.low + (action + 1.0) * 0.5 * (self.high - self.low)
            _, rewards, terminals, truncations, _ = env.step(scaled.reshape(env.actions.shape))
            reward = float(rewards[0])
            episode_return += reward
            self.steps += 1
            prev, first = action, False
            if terminals[0] or truncations[0]:
                final = env.final_observations[0].copy()
                self._store(final, action, reward, False, 0.0 if terminals[0] else 1.0)
                returns.append(episode_return)
                if on_episode is not None:
                    on_episode(self.steps, episode_return)
                prev = np.zeros(self.action_dim, np.float32)
                first, reward, episode_return = True, 0.0, 0.0
            if self.steps >= cfg.warmup and self.steps % cfg.train_every == 0:
                self.update()
        return returns

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimisers and counters (not the replay)."""
        return {
            "world": self.world.state_dict(),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "slow": self.slow.state_dict(),
            "opt": [o.state_dict() for o in (self.opt_world, self.opt_actor, self.opt_critic)],
            "return_scale": self.return_scale,
            "steps": self.steps,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.world.load_state_dict(state["world"])
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.slow.load_state_dict(state["slow"])
        for opt, s in zip(
            (self.opt_world, self.opt_actor, self.opt_critic), state["opt"], strict=True
        ):
            opt.load_state_dict(s)
        self.return_scale = float(state["return_scale"])
        self.steps = int(state["steps"])
        self.updates = int(state["updates"])
