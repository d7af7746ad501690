"""Replay storage for off-policy algorithms: a circular buffer of transitions, sampled uniformly.

A transition is what one live row did on one step: ``observations``, ``actions``, ``rewards``,
``next_observations``, ``terminals`` and ``truncations`` (plus any declared extra field, e.g.
``costs``, ``goals``). Autoreset is same-step, so for a row whose episode ended the next
observation stored is the env's ``final_observations`` row, not the new episode's first: an
algorithm bootstraps ``gamma * Q(next_observations)`` on truncated transitions and nothing on
terminated ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from fugu.buffers.batch import Batch
from fugu.buffers.rollout import torch_dtype
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """A fixed-capacity ring of transitions, one tensor per field.

    Args:
        fields: Per-transition fields (``next_observations`` is added, shaped like
            ``observations``).
        capacity: Transitions kept (the oldest are overwritten).
        device: Where the tensors live.
        seed: Seed of the sampling generator.

    Example:
        >>> import numpy as np
        >>> f = {"observations": Field("observations", (2,)), "rewards": Field("rewards")}
        >>> buf = ReplayBuffer(f, capacity=3)
        >>> buf.add({"observations": torch.ones(2, 2), "next_observations": torch.ones(2, 2),
        ...          "rewards": torch.tensor([1.0, 2.0])})
        >>> buf.add({"observations": torch.zeros(2, 2), "next_observations": torch.zeros(2, 2),
        ...          "rewards": torch.tensor([3.0, 4.0])})
        >>> len(buf), sorted(buf.tensors["rewards"].tolist())
        (3, [2.0, 3.0, 4.0])
        >>> buf.sample(5)["rewards"].shape
        torch.Size([5])
    """

    def __init__(
        self,
        fields: Mapping[str, Field],
        capacity: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise APIUsageError(f"replay capacity must be >= 1, got {capacity}")
        self.fields = dict(fields)
        if "observations" in self.fields and "next_observations" not in self.fields:
            obs = self.fields["observations"]
            self.fields["next_observations"] = Field("next_observations", obs.shape, obs.dtype)
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.tensors: dict[str, Tensor] = {
            name: torch.zeros((capacity, *f.shape), dtype=torch_dtype(f.dtype), device=device)
            for name, f in self.fields.items()
        }
        self.position = 0
        self.size = 0
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: Mapping[str, Tensor]) -> None:
        """Append a batch of transitions (``[n, ...]`` per field; every field required)."""
        missing = [name for name in self.tensors if name not in transitions]
        if missing:
            raise APIUsageError(f"ReplayBuffer.add: missing fields {missing}")
        n = int(next(iter(transitions.values())).shape[0])
        if n == 0:
            return
        if n > self.capacity:  # only the newest fit
            transitions = {k: v[-self.capacity :] for k, v in transitions.items()}
            n = self.capacity
        idx = (self.position + torch.arange(n, device=self.device)) % self.capacity
        for name, tensor in self.tensors.items():
            tensor[idx] = transitions[name].to(tensor.device, tensor.dtype)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise APIUsageError("ReplayBuffer.sample: the buffer is empty")
        idx = torch.randint(
            0, self.size, (batch_size,), generator=self.generator, device=self.device
        )
        return Batch({name: t[idx] for name, t in self.tensors.items()}, info={"indices": idx})

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions, the ring position and the sampling generator."""
        return {
            "tensors": {k: v[: self.size].clone() for k, v in self.tensors.items()},
            "position": self.position,
            "size": self.size,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        size = int(state["size"])
        for name, tensor in self.tensors.items():
            tensor[:size] = state["tensors"][name]
        self.position, self.size = int(state["position"]), size
        self.generator.set_state(state["generator"])
