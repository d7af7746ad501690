"""Replay storage for off-policy algorithms: a ring of transitions over preallocated tensors.

A transition is what one live row did on one step: ``observations``, ``actions``, ``rewards``,
``next_observations``, ``terminals`` and ``truncations`` (plus any declared extra field, e.g.
``costs``, ``goals``). Autoreset is same-step, so for a row whose episode ended the next
observation stored is the env's ``final_observations`` row, not the new episode's first: an
algorithm bootstraps ``gamma * Q(next_observations)`` on truncated transitions and nothing on
terminated ones.

Given ``num_rows`` (the rows of every collection, all live), the ring keeps each row's steps
in order: slot ``i + num_rows`` holds the step after slot ``i`` of the same row. That is what
n-step returns (``n_step``) and hindsight relabelling (:mod:`fugu.buffers.her`) need, and
what lets them be computed for a whole sampled batch at once. ``prioritized`` samples in
proportion to priorities kept in a :class:`~fugu.buffers.sumtree.SumTree` (Schaul et al.,
2016) and returns importance weights; the algorithm reports new priorities through
:meth:`ReplayBuffer.update_priorities`.

Memory is bounded by ``capacity``: the ring is one ``[capacity, record]`` tensor allocated
once, each transition's fields packed side by side in its record (:mod:`fugu.buffers.packed`),
so sampling a batch is one gather of whole records rather than one scattered read per field.
Checkpoints may include the ring (:meth:`ReplayBuffer.state_dict`); a run resumed without it
refills the ring for ``learning_starts`` transitions before updating again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from fugu.buffers.batch import Batch
from fugu.buffers.packed import field_views, record_layout
from fugu.buffers.sumtree import SumTree
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field

if TYPE_CHECKING:
    from fugu.buffers.her import HindsightRelabeler

__all__ = ["Prioritized", "ReplayBuffer"]


@dataclass(frozen=True)
class Prioritized:
    """Proportional prioritized replay: ``P(i) ~ priority_i ** alpha``, weights
    ``(N P(i)) ** -beta`` normalised by their maximum over the batch.

    Example:
        >>> Prioritized(alpha=0.6).beta
        0.4
    """

    alpha: float = 0.6
    """How much priorities matter (0: uniform)."""
    beta: float = 0.4
    """Importance-correction exponent at the start (annealed to ``beta_end``)."""
    beta_end: float = 1.0
    """Importance-correction exponent at the end of training (``progress`` 1)."""
    epsilon: float = 1e-6
    """Added to every priority, so no transition stops being sampled."""


class ReplayBuffer:
    """A fixed-capacity ring of transitions, one tensor per field.

    Args:
        fields: Per-transition fields (``next_observations`` is added, shaped like
            ``observations``).
        capacity: Transitions kept (the oldest are overwritten); with ``num_rows`` it is
            rounded down to a multiple of it.
        device: Where the tensors live.
        seed: Seed of the sampling generator.
        num_rows: Rows of every collection (all live): keeps each row's steps in order, as
            n-step returns and hindsight relabelling need (``None``: any transitions).
        n_step: Sum this many rewards per sampled transition, discounted by ``gamma`` and
            cut at the end of an episode; the batch then has ``discounts`` (``gamma ** k``,
            k the steps summed) and the ``next_observations`` ``k`` steps later.
        gamma: Discount of n-step returns.
        prioritized: Proportional prioritized sampling (``None``: uniform).
        relabeler: Hindsight relabelling of goals at sampling (needs ``num_rows``).
        prefetch: Uniform batches drawn together (one gather per field for all of them) and
            handed out one per :meth:`sample` call until the next :meth:`add`; the trainer's
            ``gradient_steps`` batches between two collections are independent uniform draws
            either way, so this only saves per-call overhead. Ignored when prioritized.

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
        *,
        num_rows: int | None = None,
        n_step: int = 1,
        gamma: float = 0.99,
        prioritized: Prioritized | None = None,
        relabeler: HindsightRelabeler | None = None,
        prefetch: int = 1,
    ) -> None:
        if capacity < 1:
            raise APIUsageError(f"replay capacity must be >= 1, got {capacity}")
        if n_step < 1:
            raise APIUsageError(f"n_step must be >= 1, got {n_step}")
        if (n_step > 1 or relabeler is not None) and num_rows is None:
            raise APIUsageError(
                "n-step returns and hindsight relabelling need the ring to keep each row's "
                "steps in order: pass num_rows (the rows of every collection)"
            )
        if n_step > 1 and relabeler is not None:
            raise APIUsageError("hindsight relabelling uses one-step transitions: set n_step=1")
        if num_rows is not None:
            if num_rows < 1 or capacity < num_rows:
                raise APIUsageError(
                    f"replay capacity ({capacity}) must hold at least one step of the "
                    f"{num_rows} rows"
                )
            capacity -= capacity % num_rows
        self.fields = dict(fields)
        if "observations" in self.fields and "next_observations" not in self.fields:
            obs = self.fields["observations"]
            self.fields["next_observations"] = Field("next_observations", obs.shape, obs.dtype)
        self.capacity = int(capacity)
        self.device = torch.device(device)
        # every transition is one record, so a sampled batch is one gather (fugu.buffers.packed)
        self._layout, width = record_layout(self.fields)
        self._records = torch.zeros((capacity, width // 8), dtype=torch.int64, device=device)
        self.tensors: dict[str, Tensor] = field_views(self._records, self._layout)
        """Each field's ``[capacity, ...]`` view of the records (writable)."""
        self.num_rows = num_rows
        self.n_step = int(n_step)
        self.gamma = float(gamma)
        self.prioritized = prioritized
        self.relabeler = relabeler
        self.tree = SumTree(self.capacity, self.device) if prioritized is not None else None
        self.prefetch = max(int(prefetch), 1)
        self._prefetched: list[Batch] = []
        self.position = 0
        self.size = 0
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.progress = 0.0
        """Training progress, set by the algorithm (anneals ``beta``)."""
        # Row-ordered rings: the collection step of each slot (-1: empty), and the step each
        # row's current episode started at, for n-step cuts and hindsight relabelling.
        self.steps: Tensor | None = None
        self.episode_starts: Tensor | None = None
        self.episode_ends: Tensor | None = None
        self.num_added_steps = 0
        self._row_start: Tensor | None = None
        if num_rows is not None:
            slots = self.capacity // num_rows
            self.steps = torch.full((slots,), -1, dtype=torch.int64, device=device)
            self.episode_starts = torch.zeros((slots, num_rows), dtype=torch.int64, device=device)
            self.episode_ends = torch.full((slots, num_rows), -1, dtype=torch.int64, device=device)
            self._row_start = torch.zeros(num_rows, dtype=torch.int64, device=device)

    def __len__(self) -> int:
        return self.size

    # -- writing ----------------------------------------------------------------------------
    def add_rollout(self, batch: Mapping[str, Tensor]) -> None:
        """Add the live transitions of a ``[T, N]`` rollout batch (the trainer calls this)."""
        live = batch["masks"]
        if self.num_rows is not None:
            if live.shape[1] != self.num_rows:
                raise APIUsageError(
                    f"this replay ring was built for {self.num_rows} rows, the rollout has "
                    f"{live.shape[1]}"
                )
            if not bool(live.all()):
                raise APIUsageError(
                    "n-step returns and hindsight relabelling need every row live on every "
                    "step (single-agent envs); use n_step=1 without relabelling here"
                )
            for t in range(live.shape[0]):
                self.add({name: batch[name][t] for name in self.fields})
            return
        flat = live.reshape(-1)
        self.add(
            {name: batch[name].reshape(-1, *batch[name].shape[2:])[flat] for name in self.fields}
        )

    def add(self, transitions: Mapping[str, Tensor]) -> None:
        """Append a batch of transitions (``[n, ...]`` per field; every field required).

        With ``num_rows``, each call adds one step of every row (``n == num_rows``).
        """
        missing = [name for name in self.tensors if name not in transitions]
        if missing:
            raise APIUsageError(f"ReplayBuffer.add: missing fields {missing}")
        n = int(next(iter(transitions.values())).shape[0])
        if n == 0:
            return
        self._prefetched.clear()
        if self.num_rows is not None and n != self.num_rows:
            raise APIUsageError(
                f"this ring keeps rows in order: add one step of all {self.num_rows} rows at a "
                f"time, got {n} transitions"
            )
        if n > self.capacity:  # only the newest fit
            transitions = {k: v[-self.capacity :] for k, v in transitions.items()}
            n = self.capacity
        start = self.position
        if start + n <= self.capacity:
            idx: Tensor | slice = slice(start, start + n)
        else:
            idx = (start + torch.arange(n, device=self.device)) % self.capacity
        for name, tensor in self.tensors.items():
            tensor[idx] = transitions[name].to(tensor.device, tensor.dtype)
        if self.num_rows is not None:
            self._index_step(transitions)
        if self.tree is not None:
            flat = torch.arange(start, start + n, device=self.device) % self.capacity
            self.tree.update(flat, torch.full((n,), self.tree.max_priority, dtype=torch.float64))
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def _index_step(self, transitions: Mapping[str, Tensor]) -> None:
        """Record the step of the slot just written and the episode bounds of its rows."""
        assert self.steps is not None and self._row_start is not None
        assert self.episode_starts is not None and self.episode_ends is not None
        slot = self.position // self.num_rows  # type: ignore[operator]
        step = self.num_added_steps
        self.steps[slot] = step
        self.episode_starts[slot] = self._row_start
        self.episode_ends[slot] = -1
        done = (transitions["terminals"] | transitions["truncations"]).to(self.device).bool()
        if bool(done.any()):
            # the rows that ended: every stored step of their episode now knows its last step
            rows = done.nonzero().squeeze(-1)
            oldest = max(int(self._row_start[rows].min()), step - len(self.steps) + 1)
            window = (torch.arange(oldest, step + 1, device=self.device)) % len(self.steps)
            ends = self.episode_ends[window][:, rows]
            starts = self.episode_starts[window][:, rows]
            mine = (starts == self._row_start[rows]) & (ends == -1)
            mine &= self.steps[window].unsqueeze(-1) >= self._row_start[rows]
            ends[mine] = step
            sub = self.episode_ends[window]
            sub[:, rows] = ends
            self.episode_ends[window] = sub
            self._row_start[rows] = step + 1
        self.num_added_steps += 1

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn with replacement (uniformly, or by priority).

        ``info["indices"]`` holds their slots (for :meth:`update_priorities`); a prioritized
        batch also has ``weights``, an n-step one ``discounts``.
        """
        if self.size == 0:
            raise APIUsageError("ReplayBuffer.sample: the buffer is empty")
        if self.tree is not None or self.prefetch == 1:
            return self._draw(batch_size)
        if not self._prefetched or self._prefetched[-1].num_steps != batch_size:
            big = self._draw(batch_size * self.prefetch)
            names = list(big.keys())
            parts = [big[name].split(batch_size) for name in names]
            indices = big.info["indices"].split(batch_size)
            self._prefetched = [
                Batch(
                    {name: part[k] for name, part in zip(names, parts, strict=True)},
                    info={"indices": indices[k]},
                )
                for k in range(self.prefetch - 1, -1, -1)
            ]
        return self._prefetched.pop()

    def _draw(self, batch_size: int) -> Batch:
        data: dict[str, Tensor] = {}
        if self.tree is None:
            idx = torch.randint(
                0, self.size, (batch_size,), generator=self.generator, device=self.device
            )
        else:
            idx, weights = self._sample_prioritized(batch_size)
            data["weights"] = weights
        data.update(field_views(self._records.index_select(0, idx), self._layout))
        if self.n_step > 1:
            self._n_step(idx, data)
        if self.relabeler is not None:
            self.relabeler.relabel(self, idx, data, self.generator)
        return Batch(data, info={"indices": idx})

    def _sample_prioritized(self, batch_size: int) -> tuple[Tensor, Tensor]:
        assert self.tree is not None and self.prioritized is not None
        total = float(self.tree.total)
        # stratified: one uniform draw in each of batch_size equal segments of the total
        u = torch.rand(
            batch_size, generator=self.generator, device=self.device, dtype=torch.float64
        )
        prefix = (torch.arange(batch_size, device=self.device) + u) * (total / batch_size)
        idx = self.tree.find(prefix.clamp_(max=total * (1 - 1e-12)))
        idx = torch.where(idx < self.size, idx, idx % self.size)
        p = self.tree.priorities(idx) / total
        beta = self.prioritized.beta + self.progress * (
            self.prioritized.beta_end - self.prioritized.beta
        )
        weights = (self.size * p).pow(-beta)
        return idx, (weights / weights.max()).float()

    def update_priorities(self, indices: Tensor, errors: Tensor) -> None:
        """Set the priorities of slots ``indices`` from their TD errors (``|e| + eps) ** alpha``);
        a no-op for uniform replay."""
        if self.tree is None or self.prioritized is None:
            return
        p = (errors.detach().abs().double() + self.prioritized.epsilon).pow(self.prioritized.alpha)
        self.tree.update(indices, p)

    def _n_step(self, idx: Tensor, data: dict[str, Tensor]) -> None:
        """Replace ``rewards``, ``next_observations``, ``terminals`` and ``truncations`` of
        the sampled transitions by their n-step versions (cut at episode ends and at the
        newest stored step); adds ``discounts``."""
        assert self.steps is not None and self.num_rows is not None
        rows = self.num_rows
        slots = len(self.steps)
        slot0, row = idx // rows, idx % rows
        step0 = self.steps[slot0]
        k = torch.arange(self.n_step, device=self.device)
        cand = (slot0.unsqueeze(-1) + k) % slots  # [B, n]
        flat = cand * rows + row.unsqueeze(-1)
        exists = self.steps[cand] == step0.unsqueeze(-1) + k
        done = self.tensors["terminals"][flat] | self.tensors["truncations"][flat]
        # step j counts when it exists and no earlier step of the window ended the episode
        ended_before = torch.cumsum(done.long(), -1) - done.long()
        valid = exists & (ended_before == 0)
        valid = torch.cumprod(valid.long(), -1).bool()
        discounts = self.gamma ** k.to(torch.float32)
        rewards = self.tensors["rewards"][flat].float()
        data["rewards"] = (rewards * discounts * valid).sum(-1)
        count = valid.sum(-1)  # >= 1: step 0 always exists
        last = flat.gather(-1, (count - 1).unsqueeze(-1)).squeeze(-1)
        data["next_observations"] = self.tensors["next_observations"][last]
        data["terminals"] = self.tensors["terminals"][last]
        data["truncations"] = self.tensors["truncations"][last]
        data["discounts"] = self.gamma ** count.to(torch.float32)

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The stored transitions, the ring position, priorities and the sampling generator."""
        state: dict[str, Any] = {
            "tensors": {k: v[: self.size].clone() for k, v in self.tensors.items()},
            "position": self.position,
            "size": self.size,
            "generator": self.generator.get_state(),
            "progress": self.progress,
        }
        if self.steps is not None:
            assert self.episode_starts is not None and self.episode_ends is not None
            assert self._row_start is not None
            state["index"] = {
                "steps": self.steps.clone(),
                "episode_starts": self.episode_starts.clone(),
                "episode_ends": self.episode_ends.clone(),
                "row_start": self._row_start.clone(),
                "num_added_steps": self.num_added_steps,
            }
        if self.tree is not None:
            state["priorities"] = self.tree.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        size = int(state["size"])
        for name, tensor in self.tensors.items():
            tensor[:size] = state["tensors"][name]
        self.position, self.size = int(state["position"]), size
        self.generator.set_state(state["generator"])
        self.progress = float(state.get("progress", 0.0))
        if self.steps is not None and "index" in state:
            assert self.episode_starts is not None and self.episode_ends is not None
            assert self._row_start is not None
            index = state["index"]
            self.steps.copy_(index["steps"])
            self.episode_starts.copy_(index["episode_starts"])
            self.episode_ends.copy_(index["episode_ends"])
            self._row_start.copy_(index["row_start"])
            self.num_added_steps = int(index["num_added_steps"])
        if self.tree is not None and "priorities" in state:
            self.tree.load_state_dict(state["priorities"])
