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
from fugu.algos.offline import DatasetStats, OfflineAlgorithm
from fugu.buffers import Batch, PolicyState
from fugu.core.errors import APIUsageError
from fugu.data import TrajectoryDataset
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
    config: BCConfig

    def __init__(
        self,
        net: nn.Module,
        stats: DatasetStats,
        config: BCConfig,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "cpu",
    ) -> None:
        self.net = net
        super().__init__(config, net, stats, observation_space, action_space, device)
        self.episodes_kept = 0

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
            target = self.action_indices(batch["actions"]).reshape(-1)
            loss = F.cross_entropy(out, target)
        else:
            target = self.stats.actions_to_unit(batch["actions"].reshape(out.shape))
            loss = (torch.tanh(out) - target).pow(2).mean()
        self.gradient_step(loss)
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
                actions = self.discrete_actions(out, extras, deterministic)[1]
            else:
                actions = self.box_actions(torch.tanh(out))
        return ActOutput(actions, {}, state)

    # -- state ------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The policy MLP and the dataset statistics."""
        return {"net": self.net, "stats": self.stats}

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, generators and counters."""
        return {**super().state_dict(), "episodes_kept": self.episodes_kept}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.episodes_kept = int(state["episodes_kept"])
