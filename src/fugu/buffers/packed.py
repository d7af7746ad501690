"""Typed fields packed side by side in one row-major tensor, so one gather reads a record.

A replay ring sampled at random is bound by memory latency, not bandwidth: each sampled
transition costs a cache miss (and often a TLB miss) per field when every field lives in a
tensor of its own. Packing a transition's fields into one fixed-width record (``observations``
next to ``actions``, ``rewards`` and the flags) turns six scattered reads into one, and a
batch into a single ``index_select``.

:func:`record_layout` places each field at a byte offset aligned to its item size (widest
first, so padding stays small) in a record whose width is a multiple of 8 bytes;
:func:`field_views` reads a ``[n, record_bytes]`` block (the whole store, or a gathered
batch) as one typed ``[n, *shape]`` view per field, sharing its memory, so writing a view
writes the store.

Example:
    >>> import numpy as np, torch
    >>> from fugu.core.schema import Field
    >>> layout, width = record_layout({"obs": Field("obs", (3,)),
    ...                                "done": Field("done", (), np.bool_)})
    >>> width, layout["obs"].offset, layout["done"].offset
    (16, 0, 12)
    >>> store = torch.zeros(5, width // 8, dtype=torch.int64)
    >>> views = field_views(store, layout)
    >>> views["obs"][2] = torch.tensor([1.0, 2.0, 3.0]); views["done"][2] = True
    >>> rows = field_views(store.index_select(0, torch.tensor([2, 0])), layout)
    >>> rows["obs"].tolist(), rows["done"].tolist()
    ([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [True, False])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from fugu.buffers.rollout import torch_dtype
from fugu.core.schema import Field

__all__ = ["Slot", "field_views", "record_layout"]


@dataclass(frozen=True)
class Slot:
    """Where one field sits in a record."""

    offset: int
    """Byte offset within the record (a multiple of the item size)."""
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes the field takes."""
        return math.prod(self.shape) * self.dtype.itemsize


def record_layout(fields: Mapping[str, Field]) -> tuple[dict[str, Slot], int]:
    """Byte offsets of ``fields`` in one record and the record's width (a multiple of 8).

    Args:
        fields: The fields of a record, by name.

    Returns:
        The slot of each field and the record width in bytes.
    """
    typed = {name: (torch_dtype(f.dtype), tuple(f.shape)) for name, f in fields.items()}
    order = sorted(typed, key=lambda name: -typed[name][0].itemsize)
    layout: dict[str, Slot] = {}
    offset = 0
    for name in order:
        dtype, shape = typed[name]
        offset = -(-offset // dtype.itemsize) * dtype.itemsize
        layout[name] = Slot(offset, dtype, shape)
        offset += layout[name].nbytes
    return {name: layout[name] for name in fields}, max(8, -(-offset // 8) * 8)


def field_views(records: Tensor, layout: Mapping[str, Slot]) -> dict[str, Tensor]:
    """One typed ``[n, *shape]`` view per field of an ``[n, width // 8]`` int64 block.

    Args:
        records: Contiguous int64 records, ``[n, width // 8]``.
        layout: The slots from :func:`record_layout`.

    Returns:
        Views sharing ``records``' memory.
    """
    raw = records.view(torch.uint8)
    views: dict[str, Tensor] = {}
    for name, slot in layout.items():
        view = raw[:, slot.offset : slot.offset + slot.nbytes].view(slot.dtype)
        views[name] = view[:, 0] if not slot.shape else view.unflatten(1, slot.shape)
    return views
