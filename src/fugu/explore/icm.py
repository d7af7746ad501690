"""The intrinsic curiosity module (Pathak et al. 2017) as a reward hook.

An encoder ``phi`` maps observations to features. An *inverse* model predicts the action
``a_t`` from ``phi(s_t)`` and ``phi(s_{t+1})``; a *forward* model predicts ``phi(s_{t+1})``
from ``phi(s_t)`` and ``a_t``. They train on ``(1 - beta) * L_inverse + beta * L_forward``
(``beta = 0.2`` in the paper): the inverse loss shapes the features to what the agent's
actions control, so unpredictable but uncontrollable parts of the observation earn no
curiosity. The intrinsic reward of a step is the forward model's error there,
``coef / 2 * ||f(phi(s_t), a_t) - phi(s_{t+1})||^2`` (the paper's ``eta / 2``), optionally
normalised like RND's (:class:`~fugu.explore.base.IntrinsicRewards`). The forward loss does
not move the target features ``phi(s_{t+1})`` (they are detached), which keeps the encoder
from collapsing them to make prediction trivial; it does train the encoder through
``phi(s_t)``.

Discrete actions (one-hot; the inverse loss is a cross-entropy) and Box actions (the
inverse loss is a squared error) are supported.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.buffers import Batch
    >>> hook = ICM(spaces.Box(0, 1, (4,)), spaces.Discrete(2), ICMConfig(seed=0))
    >>> obs = torch.eye(4)[torch.tensor([[0, 1], [1, 2]])]
    >>> nxt = torch.eye(4)[torch.tensor([[1, 2], [2, 3]])]
    >>> no = torch.zeros(2, 2, dtype=torch.bool)
    >>> batch = Batch({"observations": obs, "next_observations": nxt, "terminals": no,
    ...                "truncations": no, "masks": ~no, "actions": torch.ones(2, 2).long(),
    ...                "rewards": torch.zeros(2, 2)})
    >>> hook.rewards(batch).shape
    torch.Size([2, 2])
    >>> sorted(hook.update(batch))[:3]
    ['explore/icm_forward_loss', 'explore/icm_inverse_loss', 'explore/icm_raw_mean']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.explore.base import IntrinsicRewards, flat_size, minibatch_indices, mlp
from fugu.models.optim import Optimizer

__all__ = ["ICM", "ICMConfig"]


@dataclass(frozen=True)
class ICMConfig:
    """Hyperparameters of :class:`ICM`."""

    coef: float = 1.0
    """Scale of the intrinsic reward (the paper's ``eta``)."""
    beta: float = 0.2
    """Weight of the forward loss; the inverse loss gets ``1 - beta`` (the paper's 0.2)."""
    learning_rate: float = 1e-3
    """Adam step size of the three networks."""
    hidden_size: int = 128
    """Width of the hidden layers."""
    feature_size: int = 64
    """Size of the learned feature space."""
    update_epochs: int = 4
    """Passes of training over each rollout."""
    num_minibatches: int = 4
    """Minibatches per pass."""
    gamma: float = 0.99
    """Discount of the intrinsic returns whose spread normalises the rewards."""
    normalize_rewards: bool = True
    norm_horizon: float | None = None
    """Samples over which the spread of the intrinsic returns is measured (older ones are
    forgotten); ``None``: all of them, as in the paper (the rewards fade as novelty does)."""
    """Divide rewards by the spread of the running intrinsic returns (the paper did not)."""
    seed: int = 0
    """Seed of the networks' initialisation and of the minibatch shuffling."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta <= 1.0:
            raise APIUsageError(f"ICMConfig.beta must be in [0, 1], got {self.beta}")
        if self.update_epochs < 1 or self.num_minibatches < 1:
            raise APIUsageError("ICMConfig needs update_epochs >= 1 and num_minibatches >= 1")


class ICM:
    """Intrinsic curiosity module reward hook (see the module docstring).

    Args:
        observation_space: The env's single observation space (a Box; flattened).
        action_space: ``Discrete`` or ``Box``.
        config: Hyperparameters.
        target: Batch entry the rewards are added to (``"rewards"`` or
            ``"intrinsic_rewards"`` for ``ppo_rnd``'s intrinsic critic).
        device: Where the networks run (the algorithm's device).
    """

    name = "icm"
    needs_next_observations = True

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        config: ICMConfig | None = None,
        *,
        target: str = "rewards",
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = c = config or ICMConfig()
        self.target = target
        self.device = torch.device(device)
        if isinstance(action_space, spaces.Discrete):
            self.discrete = True
            self.action_size = int(action_space.n)
        elif isinstance(action_space, spaces.Box):
            self.discrete = False
            self.action_size = flat_size(action_space.shape)
        else:
            raise APIUsageError(
                f"ICM supports Discrete and Box action spaces, got {action_space}; "
                "use RND (explore.method = 'rnd'), which needs no actions"
            )
        size, hidden, feat = flat_size(observation_space.shape), c.hidden_size, c.feature_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.encoder = mlp([size, hidden, feat]).to(self.device)
            self.inverse_model = mlp([2 * feat, hidden, self.action_size]).to(self.device)
            self.forward_model = mlp([feat + self.action_size, hidden, feat]).to(self.device)
        self.networks = nn.ModuleDict(
            {
                "encoder": self.encoder,
                "inverse_model": self.inverse_model,
                "forward_model": self.forward_model,
            }
        )
        self.optimizer = Optimizer(
            self.networks.parameters(), learning_rate=c.learning_rate, device=self.device
        )
        self.intrinsic = IntrinsicRewards(
            self.name, c.coef, c.gamma, c.normalize_rewards, c.norm_horizon
        )
        self.generator = torch.Generator().manual_seed(c.seed + 1)

    def _encode_actions(self, actions: Tensor) -> Tensor:
        if self.discrete:
            return F.one_hot(actions.long().reshape(-1), self.action_size).float()
        return actions.reshape(actions.shape[0], -1).float()

    def _flat(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Live ``(obs, next_obs, actions)`` flattened to samples (all when no masks)."""
        obs, nxt, actions = batch["observations"], batch["next_observations"], batch["actions"]
        steps, rows = obs.shape[:2]
        obs = obs.reshape(steps * rows, -1).float()
        nxt = nxt.reshape(steps * rows, -1).float()
        actions = actions.reshape(steps * rows, *actions.shape[2:])
        return obs, nxt, actions

    def _forward_error(self, obs: Tensor, nxt: Tensor, actions: Tensor) -> Tensor:
        phi, phi_next = self.encoder(obs), self.encoder(nxt)
        pred = self.forward_model(torch.cat([phi, self._encode_actions(actions)], -1))
        return 0.5 * (pred - phi_next).pow(2).sum(-1)

    @torch.no_grad()
    def rewards(self, batch: Batch) -> Tensor:
        """``[T, N]`` curiosity: the forward model's error on each step's transition."""
        if "next_observations" not in batch:
            raise APIUsageError(
                "ICM needs next_observations in the batch; the Trainer stores them for hooks "
                "with needs_next_observations (pass the hook as reward_hooks=[...])"
            )
        steps, rows = batch["rewards"].shape
        raw = self._forward_error(*self._flat(batch)).reshape(steps, rows)
        return self.intrinsic(raw, batch)

    def update(self, batch: Batch) -> dict[str, float]:
        """Train encoder, inverse and forward models on the rollout's live transitions."""
        c = self.config
        obs, nxt, actions = self._flat(batch)
        masks = batch.get("masks")
        if masks is not None and not bool(masks.all()):
            live = masks.reshape(-1)
            obs, nxt, actions = obs[live], nxt[live], actions[live]
        totals = torch.zeros(2)
        count = 0
        for _ in range(c.update_epochs):
            for idx in minibatch_indices(obs.shape[0], c.num_minibatches, self.generator):
                idx = idx.to(obs.device)
                o, n, a = obs[idx], nxt[idx], actions[idx]
                with self.optimizer.autocast():
                    phi, phi_next = self.encoder(o), self.encoder(n)
                    logits = self.inverse_model(torch.cat([phi, phi_next], -1)).float()
                    if self.discrete:
                        inverse = F.cross_entropy(logits, a.long().reshape(-1))
                    else:
                        inverse = (logits - a.reshape(a.shape[0], -1).float()).pow(2).mean()
                    pred = self.forward_model(torch.cat([phi, self._encode_actions(a)], -1))
                    forward = 0.5 * (pred - phi_next.detach()).pow(2).sum(-1).mean()
                    loss = (1.0 - c.beta) * inverse + c.beta * forward
                self.optimizer.backward(loss)
                self.optimizer.step()
                totals += torch.stack([inverse.detach(), forward.detach()]).float().cpu()
                count += 1
        inverse_loss, forward_loss = (totals / max(count, 1)).tolist()
        return {
            f"explore/{self.name}_inverse_loss": inverse_loss,
            f"explore/{self.name}_forward_loss": forward_loss,
            **self.intrinsic.metrics(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The networks, the optimizer, the reward statistics and the generator."""
        return {
            "networks": self.networks.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "intrinsic": self.intrinsic.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.networks.load_state_dict(state["networks"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.intrinsic.load_state_dict(state["intrinsic"])
        self.generator.set_state(state["generator"])
