"""Shared machinery of the ``offline`` algorithms (Decision Transformer, behaviour cloning).

An offline algorithm trains on a fixed :class:`~fugu.data.TrajectoryDataset` named by its
config's ``dataset`` (a directory written by ``fugu collect``): the trainer calls its
``dataset()`` for an endless iterator of batches and never steps the env for learning. This
module opens and checks the dataset (:func:`open_dataset`), holds the statistics a policy
carries in its weights (:class:`DatasetStats`: observation mean and std, action bounds) and
the feed-forward half of the actor protocol (:class:`OfflineAlgorithm`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from fugu.buffers import PolicyState
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.data import DatasetError, TrajectoryDataset

__all__ = ["DatasetStats", "OfflineAlgorithm", "open_dataset"]


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
    """The parts of the protocol every offline algorithm shares: nothing stored from env
    steps, no bootstrap, and a seeded numpy generator for sampling the dataset."""

    device: torch.device
    np_generator: np.random.Generator

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
