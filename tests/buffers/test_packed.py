"""Packed replay records: every field round-trips through one record at an aligned offset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fugu.buffers.packed import field_views, record_layout
from fugu.buffers.replay import ReplayBuffer
from fugu.core.schema import Field

MIXED = {
    "observations": Field("observations", (2, 3), np.uint8),
    "actions": Field("actions", (), np.int64),
    "rewards": Field("rewards"),
    "terminals": Field("terminals", (), np.bool_),
    "goals": Field("goals", (3,), np.float64),
    "costs": Field("costs", (), np.float16),
}


def test_layout_aligns_each_field_and_never_overlaps() -> None:
    layout, width = record_layout(MIXED)
    assert width % 8 == 0
    spans = sorted((s.offset, s.offset + s.nbytes) for s in layout.values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    for slot in layout.values():
        assert slot.offset % slot.dtype.itemsize == 0
    assert spans[-1][1] <= width
    assert list(layout) == list(MIXED)  # the caller's order is kept


def test_views_round_trip_every_dtype_and_shape() -> None:
    layout, width = record_layout(MIXED)
    store = torch.zeros(6, width // 8, dtype=torch.int64)
    views = field_views(store, layout)
    gen = torch.Generator().manual_seed(0)
    written = {
        "observations": torch.randint(0, 256, (6, 2, 3), generator=gen).to(torch.uint8),
        "actions": torch.tensor([2**40, -3, 0, 7, 1, 2**62]),
        "rewards": torch.randn(6, generator=gen),
        "terminals": torch.tensor([True, False, True, True, False, False]),
        "goals": torch.randn(6, 3, generator=gen, dtype=torch.float64),
        "costs": torch.randn(6, generator=gen).half(),
    }
    for name, value in written.items():
        views[name][:] = value
    rows = torch.tensor([5, 0, 3])
    gathered = field_views(store.index_select(0, rows), layout)
    for name, value in written.items():
        assert gathered[name].dtype == value.dtype
        assert torch.equal(gathered[name], value[rows]), name


def test_sampled_batches_are_copies_of_the_ring() -> None:
    buf = ReplayBuffer(MIXED, capacity=4, prefetch=2)
    obs = torch.arange(24, dtype=torch.uint8).reshape(4, 2, 3)
    buf.add({"observations": obs, "next_observations": obs, "actions": torch.arange(4),
             "rewards": torch.ones(4), "terminals": torch.zeros(4, dtype=torch.bool),
             "goals": torch.zeros(4, 3, dtype=torch.float64),
             "costs": torch.zeros(4, dtype=torch.float16)})  # fmt: skip
    batch = buf.sample(3)
    assert torch.equal(batch["observations"], obs[batch["actions"]])
    batch["rewards"].fill_(-1.0)
    assert bool((buf.tensors["rewards"] == 1.0).all())


@pytest.mark.parametrize("prefetch", [1, 8])
def test_prefetched_batches_are_distinct_uniform_draws(prefetch: int) -> None:
    f = {"observations": Field("observations", (1,)), "rewards": Field("rewards")}
    buf = ReplayBuffer(f, capacity=1000, seed=3, prefetch=prefetch)
    values = torch.arange(1000, dtype=torch.float32)
    buf.add({"observations": values[:, None], "next_observations": values[:, None],
             "rewards": values})  # fmt: skip
    batches = [buf.sample(100)["rewards"] for _ in range(80)]
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(batches))
    counts = torch.bincount(torch.cat(batches).long() // 100, minlength=10).float()
    assert counts.min() > 0.8 * counts.mean()  # uniform over the ring
