"""Shared machinery of the ``offline`` algorithms (Decision Transformer, behaviour cloning).

An offline algorithm trains on a fixed :class:`~fugu.data.TrajectoryDataset` named by its
config's ``dataset`` (a directory written by ``fugu collect``): the trainer calls its
``dataset()`` for an endless iterator of batches and never steps the env for learning. This
module opens and checks the dataset (:func:`open_dataset`), holds the statistics a policy
carries in its weights (:class:`DatasetStats`: observation mean and std, action bounds) and
:class:`OfflineAlgorithm`, the base of both algorithms: its optimizer and seeded generators,
the gradient step, turning network outputs into env actions, the checkpointed state and the
feed-forward half of the actor protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu.buffers import Batch, PolicyState
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.data import DatasetError, TrajectoryDataset
from fugu.models.optim import Optimizer

__all__ = ["DatasetStats", "OfflineAlgorithm", "OfflineConfig", "open_dataset"]


class OfflineConfig(Protocol):
    """The fields every offline algorithm's config has."""

    @property
    def dataset(self) -> str: ...
    @property
    def learning_rate(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def max_grad_norm(self) -> float: ...
    @property
    def seed(self) -> int: ...


def open_dataset(
    path: str, observation_space: spaces.Space, action_space: spaces.Space, section: str
) -> TrajectoryDataset:
    """Open the dataset at ``path`` and check it matches the algorithm's spaces.

    Raises:
        APIUsageError: No path given (the message names ``--SECTION.dataset``).
        DatasetError: The path is not a dataset, or its spaces differ from the env's.
    """
    if not path:
        raise APIUsageError(
            f"{section} trains on a dataset: pass --dataset PATH (or --{section}.dataset PATH), "
            "a directory written by 'fugu collect'"
        )
    dataset = TrajectoryDataset.load(path)
    obs_shape = tuple(dataset.observations.shape[1:])
    if obs_shape != tuple(observation_space.shape or ()):
        raise DatasetError(
            f"dataset {path} has observations of shape {obs_shape}, the env "
            f"{observation_space.shape} (was it collected on another env? it says "
            f"{dataset.metadata.env_id or 'nothing'})"
        )
    act_shape = tuple(dataset.actions.shape[1:])
    if act_shape != tuple(action_space.shape or ()):
        raise DatasetError(
            f"dataset {path} has actions of shape {act_shape}, the env {action_space.shape}"
        )
    if isinstance(action_space, spaces.Discrete):
        top = int(np.max(dataset.actions))
        if top >= int(action_space.n) + int(action_space.start):
            raise DatasetError(
                f"dataset {path} holds action {top}, outside the env's {action_space}"
            )
    return dataset


class DatasetStats(nn.Module):
    """Statistics of the training data kept with the weights (buffers, saved in checkpoints).

    Attributes (buffers): ``obs_mean``, ``obs_std`` (observation normalisation),
    ``action_low``, ``action_high`` (Box bounds that actions are scaled to ``[-1, 1]`` by;
    infinite bounds are left unscaled), and for return-conditioned policies ``rtg_scale``
    and ``target_return``.
    """

    obs_mean: Tensor
    obs_std: Tensor
    action_low: Tensor
    action_high: Tensor
    rtg_scale: Tensor
    target_return: Tensor

    def __init__(self, obs_dim: int, action_space: spaces.Space) -> None:
        super().__init__()
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.register_buffer("rtg_scale", torch.ones(()))
        self.register_buffer("target_return", torch.zeros(()))
        self.bounded = False
        if isinstance(action_space, spaces.Box):
            low = torch.as_tensor(np.asarray(action_space.low, dtype=np.float32)).reshape(-1)
            high = torch.as_tensor(np.asarray(action_space.high, dtype=np.float32)).reshape(-1)
            self.bounded = bool(torch.isfinite(low).all() and torch.isfinite(high).all())
            if not self.bounded:
                low, high = -torch.ones_like(low), torch.ones_like(high)
            self.register_buffer("action_low", low)
            self.register_buffer("action_high", high)

    def fit(self, dataset: TrajectoryDataset) -> None:
        """Set the observation statistics from ``dataset``."""
        obs = np.asarray(dataset.observations, dtype=np.float64).reshape(
            dataset.num_transitions, -1
        )
        self.obs_mean.copy_(torch.as_tensor(obs.mean(0), dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(obs.std(0) + 1e-6, dtype=torch.float32))

    def normalize(self, obs: Tensor) -> Tensor:
        """``(obs - mean) / std``, flattened per step."""
        flat = obs.reshape(*obs.shape[: obs.ndim - len(self.obs_mean.shape)], -1).float()
        return (flat - self.obs_mean) / self.obs_std

    def actions_to_unit(self, actions: Tensor) -> Tensor:
        """Box actions in env units to ``[-1, 1]``."""
        if not self.bounded:
            return actions.float()
        scale = (self.action_high - self.action_low) / 2
        return ((actions.float() - self.action_low) / scale - 1.0).clamp(-1.0, 1.0)

    def actions_from_unit(self, actions: Tensor) -> Tensor:
        """``[-1, 1]`` actions to env units."""
        if not self.bounded:
            return actions
        return self.action_low + (actions + 1.0) * (self.action_high - self.action_low) / 2


class OfflineAlgorithm:
    """What every offline algorithm shares: an AdamW optimizer over its network, a seeded
    numpy generator (the dataset sampler) and torch generator (action sampling), the update
    count, nothing stored from env steps, no bootstrap and no recurrent state by default.

    Args:
        config: The algorithm's config (see :class:`OfflineConfig`).
        network: The module trained (moved to ``device``).
        stats: Observation and action statistics (fitted on the dataset, saved with weights).
        observation_space: The env's single observation space.
        action_space: The env's single action space.
        device: Where it runs.
    """

    name: ClassVar[str]
    config: OfflineConfig

    def __init__(
        self,
        config: OfflineConfig,
        network: nn.Module,
        stats: DatasetStats,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        network.to(self.device)
        self.stats = stats.to(self.device)
        self.observation_space = observation_space
        self.action_space = action_space
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.optimizer = Optimizer(
            network.parameters(),
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm,
            device=self.device,
        )
        self.np_generator = np.random.default_rng(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.num_updates = 0

    # -- data -------------------------------------------------------------------------------
    def dataset(self) -> Iterator[Batch]:
        """Endless training batches of the config's ``dataset`` (see :meth:`batches`)."""
        data = open_dataset(self.config.dataset, self.observation_space, self.action_space,
                            self.name)  # fmt: skip
        return self.batches(data)

    def batches(self, data: TrajectoryDataset) -> Iterator[Batch]:
        """Fit the statistics on ``data`` and sample training batches of it forever."""
        raise NotImplementedError

    # -- learning ---------------------------------------------------------------------------
    def gradient_step(self, loss: Tensor) -> None:
        """Backpropagate ``loss``, clip, step the optimizer and count the update."""
        self.optimizer.backward(loss)
        self.optimizer.step()
        self.num_updates += 1

    def action_indices(self, actions: Tensor) -> Tensor:
        """Discrete env actions to int64 indices from 0 (the space's ``start`` removed)."""
        return actions.long() - int(self.action_space.start)  # type: ignore[attr-defined]

    # -- acting -----------------------------------------------------------------------------
    def discrete_actions(
        self, logits: Tensor, extras: Mapping[str, Tensor], deterministic: bool
    ) -> tuple[Tensor, Tensor]:
        """``(indices, env actions)`` from ``[B, n]`` logits: illegal actions (the env's
        ``action_masks``) are masked out, then the mode or a sample of the action
        generator."""
        if "action_masks" in extras:
            logits = logits.masked_fill(~extras["action_masks"].to(self.device).bool(), -1e9)
        if deterministic:
            index = logits.argmax(-1)
        else:
            probs = torch.softmax(logits, -1)
            index = torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)
        return index, index + int(self.action_space.start)  # type: ignore[attr-defined]

    def box_actions(self, unit: Tensor) -> Tensor:
        """``[B, action_dim]`` actions in ``[-1, 1]`` to env units, in the space's shape."""
        shape = (unit.shape[0], *(self.action_space.shape or ()))
        return self.stats.actions_from_unit(unit).reshape(shape)

    # -- the rest of the protocol ------------------------------------------------------------
    def storage_fields(self, env_fields: Mapping[str, Field]) -> dict[str, Field]:
        """Nothing: an offline algorithm learns from its dataset, not from env steps."""
        return {}

    def bootstrap(self, obs: Tensor, state: PolicyState) -> Tensor:
        """Not used (no rollouts)."""
        raise APIUsageError(f"{type(self).__name__} learns offline and bootstraps nothing")

    def initial_state(self, num_rows: int) -> PolicyState:
        """No recurrent state."""
        return None

    def reset_state(self, state: PolicyState, starts: Tensor) -> PolicyState:
        """No recurrent state."""
        return state

    def sampler_state(self) -> dict[str, Any]:
        """The dataset sampler's generator state."""
        return dict(self.np_generator.bit_generator.state)

    def load_sampler_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`sampler_state`."""
        self.np_generator.bit_generator.state = dict(state)

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, generators and the update count."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler": self.sampler_state(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.load_sampler_state(state["sampler"])
        self.num_updates = int(state["num_updates"])
