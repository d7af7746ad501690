"""Behaviour cloning and filtered behaviour cloning (%BC): the baselines of offline RL.

Read top to bottom: :class:`BCConfig`, then :class:`BC`, an ``offline``
:class:`~fugu.algos.base.Algorithm` that fits an MLP policy to the dataset's actions by
maximum likelihood (cross-entropy for Discrete actions, mean squared error on ``[-1, 1]``-scaled
Box actions). With ``top_fraction < 1`` it trains only on the best episodes by return: %BC
(``top_fraction = 0.1`` is 10%BC), which on mixed-quality data imitates the good part only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from fugu.algos.base import ActOutput, Collection, check_action_space
from fugu.algos.offline import DatasetStats, OfflineAlgorithm, open_dataset
from fugu.buffers import Batch, PolicyState
from fugu.core.errors import APIUsageError
from fugu.data import TrajectoryDataset
from fugu.models.optim import Optimizer
from fugu.models.policy import PolicyConfig

__all__ = ["BC", "BCConfig"]


@dataclass(frozen=True)
class BCConfig:
    """Hyperparameters of (filtered) behaviour cloning.

    Example:
        >>> BCConfig(top_fraction=0.1).top_fraction
        0.1
    """

    dataset: str = ""
    """The dataset directory (written by ``fugu collect``); ``fugu train --dataset`` sets it."""
    top_fraction: float = 1.0
    """Train on this fraction of the episodes with the highest returns (1: plain BC; less:
    %BC)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the policy's hidden layers."""
    learning_rate: float = 1e-3
    """Adam step size."""
    weight_decay: float = 1e-4
    """AdamW's decoupled weight decay."""
    max_grad_norm: float = 1.0
    """Clip of the global gradient norm (``<= 0`` disables it)."""
    seed: int = 0
    """Seed of the batch sampler and of action sampling."""

    def __post_init__(self) -> None:
        if not 0.0 < self.top_fraction <= 1.0:
            raise APIUsageError(f"BCConfig.top_fraction must be in (0, 1], got {self.top_fraction}")
        if self.batch_size < 1 or not self.hidden_sizes:
            raise APIUsageError("BCConfig.batch_size must be >= 1 and hidden_sizes non-empty")


def _mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BC(OfflineAlgorithm):
    """Behaviour cloning (``top_fraction = 1``) or %BC on Discrete or Box actions.

    Args:
        net: The policy MLP (observations to logits or unit-scaled actions).
        stats: Observation and action statistics (fitted on the dataset, saved with weights).
        config: Hyperparameters.
        observation_space: The env's single observation space.
        action_space: The env's single action space.
        device: Where it runs.
    """

    name: ClassVar[str] = "bc"
    config_type: ClassVar[type] = BCConfig
    collection: ClassVar[Collection] = "offline"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete", "box")
    dashboard_metrics: ClassVar[tuple[str, ...]] = ("loss/action", "train/episodes_kept")

    def __init__(
        self,
        net: nn.Module,
        stats: DatasetStats,
        config: BCConfig,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.stats = stats.to(self.device)
        self.observation_space = observation_space
        self.action_space = action_space
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.optimizer = Optimizer(
            self.net.parameters(),
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            device=self.device,
        )
        self.np_generator = np.random.default_rng(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.episodes_kept = 0
        self.num_updates = 0

    @classmethod
    def build(
        cls,
        config: BCConfig,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        policy_config: PolicyConfig,
        device: torch.device | str = "cpu",
    ) -> BC:
        """A new BC policy for these spaces (``[bc]`` sets its size; ``[policy]`` is unused)."""
        check_action_space(cls, action_space)
        obs_dim = int(np.prod(observation_space.shape))
        if isinstance(action_space, spaces.Discrete):
            out = int(action_space.n)
        else:
            out = int(np.prod(action_space.shape))
        net = _mlp((obs_dim, *config.hidden_sizes, out))
        return cls(net, DatasetStats(obs_dim, action_space), config, observation_space,
                   action_space, device)  # fmt: skip

    # -- data -------------------------------------------------------------------------------
    def dataset(self) -> Iterator[Batch]:
        """Endless batches of transitions of ``config.dataset`` (its best episodes for %BC)."""
        data = open_dataset(self.config.dataset, self.observation_space, self.action_space, "bc")
        return self.batches(data)

    def batches(self, data: TrajectoryDataset) -> Iterator[Batch]:
        """Keep the best ``top_fraction`` of ``data``'s episodes, fit the statistics on them,
        and sample transitions uniformly forever."""
        if self.config.top_fraction < 1.0:
            data = data.top_episodes(self.config.top_fraction)
        self.episodes_kept = data.num_episodes
        self.stats.fit(data)
        obs = torch.as_tensor(np.array(data.observations), device=self.device)
        actions = torch.as_tensor(np.array(data.actions), device=self.device)
        while True:
            index = torch.from_numpy(
                self.np_generator.integers(0, data.num_transitions, self.config.batch_size)
            ).to(self.device)
            yield Batch({"observations": obs[index], "actions": actions[index]})

    # -- learning ---------------------------------------------------------------------------
    def update(self, batch: Batch, progress: float = 0.0) -> dict[str, float]:
        """One gradient step of maximum likelihood on the dataset's actions."""
        out = self.net(self.stats.normalize(batch["observations"]))
        if self.discrete:
            target = batch["actions"].long().reshape(-1) - int(self.action_space.start)  # type: ignore[attr-defined]
            loss = F.cross_entropy(out, target)
        else:
            target = self.stats.actions_to_unit(batch["actions"].reshape(out.shape))
            loss = (torch.tanh(out) - target).pow(2).mean()
        self.optimizer.backward(loss)
        self.optimizer.step()
        self.num_updates += 1
        return {"loss/action": float(loss.detach()), "train/episodes_kept": self.episodes_kept}

    # -- acting -----------------------------------------------------------------------------
    def act(
        self,
        obs: Tensor,
        state: PolicyState,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """The cloned policy's action (mode, or a sample for Discrete actions)."""
        with torch.inference_mode():
            out = self.net(self.stats.normalize(obs.to(self.device)))
            if self.discrete:
                if "action_masks" in extras:
                    out = out.masked_fill(~extras["action_masks"].to(self.device).bool(), -1e9)
                if deterministic:
                    index = out.argmax(-1)
                else:
                    index = torch.multinomial(
                        torch.softmax(out, -1), 1, generator=self.generator
                    ).squeeze(-1)
                actions = index + int(self.action_space.start)  # type: ignore[attr-defined]
            else:
                shape = (obs.shape[0], *(self.action_space.shape or ()))
                actions = self.stats.actions_from_unit(torch.tanh(out)).reshape(shape)
        return ActOutput(actions, {}, state)

    # -- state ------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The policy MLP and the dataset statistics."""
        return {"net": self.net, "stats": self.stats}

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, generators and counters."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": self.sampler_state(),
            "num_updates": self.num_updates,
            "episodes_kept": self.episodes_kept,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.load_sampler_state(state["sampler"])
        self.num_updates = int(state["num_updates"])
        self.episodes_kept = int(state["episodes_kept"])
