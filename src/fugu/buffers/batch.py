"""What a collector hands an algorithm's ``update``: named tensors plus the recurrent state."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

__all__ = ["Batch", "PolicyState"]

PolicyState = Any
"""Recurrent state: ``None`` for feed-forward policies, ``(h, c)`` for LSTM ones."""


@dataclass
class Batch(Mapping[str, Tensor]):
    """Named tensors of one update, read like a dict (``batch["rewards"]``).

    A rollout batch is time-major ``[T, N, ...]`` (horizon by stored rows) and always holds
    ``observations``, ``actions``, ``rewards``, ``terminals``, ``truncations``, ``masks`` (the
    row was live: its agent acted) and ``starts`` (the observation begins an episode), plus
    every field the algorithm asked for (:meth:`~fugu.algos.base.Algorithm.storage_fields`),
    and ``next_values`` when it stores ``values``. A replay batch is ``[B, ...]`` transitions
    (see :class:`~fugu.buffers.replay.ReplayBuffer`).

    Example:
        >>> import torch
        >>> b = Batch({"rewards": torch.zeros(4, 2)})
        >>> b["rewards"].shape, "values" in b, b.num_steps, b.num_rows
        (torch.Size([4, 2]), False, 4, 2)
    """

    data: dict[str, Tensor]
    initial_state: PolicyState = None
    """Recurrent state before step 0 of the rollout (``None`` for feed-forward policies)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Anything else a collector passes along (e.g. replay indices for priorities)."""

    def __getitem__(self, key: str) -> Tensor:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def num_steps(self) -> int:
        """Leading dimension (the horizon of a rollout, the size of a replay batch)."""
        return int(next(iter(self.data.values())).shape[0])

    @property
    def num_rows(self) -> int:
        """Second dimension of a rollout batch (stored rows)."""
        return int(next(iter(self.data.values())).shape[1])
