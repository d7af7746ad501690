"""A sum-tree over tensors: priorities set and sampled for a whole batch at once.

Leaves hold priorities; every inner node holds the sum of its two children, so the root is the
total and a prefix sum ``u`` finds its leaf in ``log2(capacity)`` vectorised steps (one per
level, for every sample of the batch together). Updates write the leaves and recompute their
ancestors level by level, also vectorised. On the CPU both run as numba kernels over the
tree's memory (a descent or an ancestor walk per sample costs nanoseconds there, where each
vectorised torch step costs microseconds); on other devices they run as torch ops.

Example:
    >>> tree = SumTree(4)
    >>> tree.update(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 0.0, 3.0, 0.0]))
    >>> float(tree.total)
    4.0
    >>> tree.find(torch.tensor([0.5, 1.5, 3.9])).tolist()
    [0, 2, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit
from torch import Tensor

from fugu.core.errors import APIUsageError

__all__ = ["SumTree"]


@njit(cache=True, nogil=True)
def _find_kernel(tree: np.ndarray, prefix: np.ndarray, depth: int, out: np.ndarray) -> None:
    leaves = 1 << depth
    for i in range(prefix.shape[0]):
        u = prefix[i]
        node = 1
        for _ in range(depth):
            left = tree[2 * node]
            if u >= left:
                u -= left
                node = 2 * node + 1
            else:
                node = 2 * node
        out[i] = node - leaves


@njit(cache=True, nogil=True)
def _update_kernel(
    tree: np.ndarray, leaves_idx: np.ndarray, values: np.ndarray, depth: int
) -> None:
    leaves = 1 << depth
    for i in range(leaves_idx.shape[0]):  # every leaf first: the last write of an index wins
        tree[leaves_idx[i] + leaves] = values[i]
    for i in range(leaves_idx.shape[0]):  # then each leaf's ancestors, bottom up
        node = (leaves_idx[i] + leaves) // 2
        while node >= 1:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node //= 2


class SumTree:
    """Priorities of ``capacity`` leaves in a binary tree of sums (float64 for exact totals).

    Args:
        capacity: Number of leaves.
        device: Where the tree lives.
    """

    def __init__(self, capacity: int, device: torch.device | str = "cpu") -> None:
        if capacity < 1:
            raise APIUsageError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.depth = max((self.capacity - 1).bit_length(), 0)
        self.leaves = 1 << self.depth
        self.device = torch.device(device)
        # node 1 is the root; node k has children 2k and 2k+1; leaves start at self.leaves
        self.tree = torch.zeros(2 * self.leaves, dtype=torch.float64, device=self.device)
        self.max_priority = 1.0

    @property
    def total(self) -> Tensor:
        """The sum of every priority."""
        return self.tree[1]

    def priorities(self, indices: Tensor) -> Tensor:
        """The priorities of leaves ``indices``."""
        return self.tree[indices + self.leaves]

    def update(self, indices: Tensor, priorities: Tensor) -> None:
        """Set leaves ``indices`` to ``priorities`` (>= 0; the last write of a repeated index
        wins) and recompute their ancestors."""
        if indices.numel() == 0:
            return
        if bool((priorities < 0).any()) or not bool(torch.isfinite(priorities).all()):
            raise APIUsageError("SumTree priorities must be finite and >= 0")
        self.max_priority = max(self.max_priority, float(priorities.max()))
        if self.device.type == "cpu":
            _update_kernel(
                self.tree.numpy(),
                indices.to(torch.int64).contiguous().numpy(),
                priorities.to(torch.float64).contiguous().numpy(),
                self.depth,
            )
            return
        nodes = indices.to(self.device, torch.int64) + self.leaves
        self.tree[nodes] = priorities.to(self.device, torch.float64)
        for _ in range(self.depth):
            nodes = torch.unique(nodes // 2)
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def find(self, prefix: Tensor) -> Tensor:
        """The leaf of each prefix sum in ``[0, total)`` (vectorised descent)."""
        if self.device.type == "cpu":
            out = torch.empty(prefix.shape[0], dtype=torch.int64)
            u64 = prefix.to(torch.float64).contiguous()
            _find_kernel(self.tree.numpy(), u64.numpy(), self.depth, out.numpy())
            return out.clamp_(max=self.capacity - 1)
        u = prefix.to(self.device, torch.float64).clone()
        nodes = torch.ones_like(u, dtype=torch.int64)
        for _ in range(self.depth):
            left = self.tree[2 * nodes]
            right = u >= left
            u = torch.where(right, u - left, u)
            nodes = 2 * nodes + right
        # guard against rounding at the edges: never return a zero-priority leaf past the end
        return (nodes - self.leaves).clamp_(max=self.capacity - 1)

    def state_dict(self) -> dict[str, Any]:
        """The whole tree (inner sums included, so sampling resumes bitwise) and the largest
        priority seen."""
        return {"tree": self.tree.clone(), "max_priority": self.max_priority}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.tree.copy_(state["tree"])
        self.max_priority = float(state["max_priority"])
