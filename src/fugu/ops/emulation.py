"""Restore nested observations from flat batch tensors as zero-copy views (policy side).

Envs flatten nested observation spaces into rows with a
:class:`~fugu.core.flatten.SpaceLayout`; a policy receives a batch tensor of those rows
``[*batch, *row_shape]`` and calls :func:`restore` to get the nested dict/tuple of leaf tensors
back. Every leaf is a view of the batch tensor (``Tensor.view(dtype)`` on a byte slice), so no
data is copied, on CPU or GPU.

Example:
    >>> import numpy as np
    >>> import torch
    >>> from gymnasium import spaces
    >>> from fugu.core.flatten import SpaceLayout
    >>> layout = SpaceLayout.from_space(
    ...     spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "id": spaces.Discrete(3)})
    ... )
    >>> rows = np.zeros((4, *layout.row_shape), layout.row_dtype)
    >>> layout.write(rows[1], {"pos": np.array([0.5, 0.25], np.float32), "id": 2})
    >>> batch = torch.from_numpy(rows)
    >>> obs = restore(batch, layout)
    >>> obs["id"].tolist(), obs["pos"][1].tolist()
    ([0, 2, 0, 0], [0.5, 0.25])
    >>> obs["pos"].untyped_storage().data_ptr() == batch.untyped_storage().data_ptr()
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError
from fugu.core.flatten import Leaf, SpaceLayout

__all__ = ["restore", "restore_leaf", "torch_dtype"]


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype.

    Example:
        >>> torch_dtype(np.dtype(np.int64))
        torch.int64
    """
    return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype).newbyteorder("="))).dtype


def _as_bytes(batch: torch.Tensor, layout: SpaceLayout) -> tuple[torch.Tensor, tuple[int, ...]]:
    ndim = len(layout.row_shape)
    lead = tuple(batch.shape[: batch.ndim - ndim])
    if tuple(batch.shape[batch.ndim - ndim :]) != layout.row_shape:
        raise APIUsageError(
            f"batch must end with the layout's row shape {layout.row_shape}, "
            f"got {tuple(batch.shape)}"
        )
    if batch.dtype != torch_dtype(layout.row_dtype):
        raise APIUsageError(
            f"batch dtype {batch.dtype} does not match the layout's row dtype {layout.row_dtype}"
        )
    flat = batch.view(*lead, -1)
    if flat.dtype != torch.uint8:
        flat = flat.view(torch.uint8)
    return flat, lead


def restore_leaf(batch: torch.Tensor, layout: SpaceLayout, leaf: Leaf | str) -> torch.Tensor:
    """The view of one leaf (a :class:`Leaf` or its name) in a batch of rows."""
    if isinstance(leaf, str):
        leaf = layout.leaf(leaf)
    flat, lead = _as_bytes(batch, layout)
    return _leaf_view(flat, lead, leaf)


def _leaf_view(flat: torch.Tensor, lead: tuple[int, ...], leaf: Leaf) -> torch.Tensor:
    piece = flat[..., leaf.offset : leaf.offset + leaf.nbytes]
    dtype = np.dtype(leaf.dtype)
    if dtype.itemsize > 1 and not dtype.isnative:
        # Non-native byte order (``>f4`` on a little-endian machine): swap each item's bytes.
        # This leaf is a copy, not a view; native-order leaves stay views.
        size = dtype.itemsize
        piece = piece.reshape(*piece.shape[:-1], -1, size).flip(-1).reshape(piece.shape)
    if dtype != np.uint8:
        piece = piece.contiguous() if not dtype.isnative else piece
        piece = piece.view(torch_dtype(dtype))
    return piece.view(*lead, *leaf.shape)


def restore(batch: torch.Tensor, layout: SpaceLayout) -> Any:
    """The nested observations held by a batch of flat rows, as zero-copy tensor views.

    Args:
        batch: Rows of ``layout``: shape ``[*batch, *layout.row_shape]``, dtype
            ``layout.row_dtype`` (on any device).
        layout: The observation layout of the env (``env.observation_layout``).

    Returns:
        The batch itself for a top-level ``Box``; otherwise dicts (``Dict``) and tuples
        (``Tuple``) of tensors shaped ``[*batch, *leaf.shape]`` that share ``batch``'s memory.
    """
    if layout.is_passthrough:
        return batch
    flat, lead = _as_bytes(batch, layout)
    views = {leaf.path: _leaf_view(flat, lead, leaf) for leaf in layout.leaves}
    return _nest(layout.space, (), views)


def _nest(space: spaces.Space, path: tuple[Any, ...], views: dict[tuple[Any, ...], Any]) -> Any:
    if isinstance(space, spaces.Dict):
        return {key: _nest(sub, (*path, key), views) for key, sub in space.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_nest(sub, (*path, i), views) for i, sub in enumerate(space.spaces))
    return views[path]
