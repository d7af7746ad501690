"""Flattening layouts for nested observation spaces (numpy only).

A :class:`SpaceLayout` maps any nested gymnasium space (``Dict`` / ``Tuple`` of ``Box``,
``Discrete``, ``MultiDiscrete``, ``MultiBinary``, arbitrarily nested) onto one flat row of a
buffer. Each leaf of the space owns a fixed byte range of the row, and a numpy structured dtype
(:attr:`SpaceLayout.dtype`) viewed over the row exposes every leaf as an array view, so an
observation is written leaf by leaf *in place*, without any concatenation.

The row dtype rule:

* a top-level ``Box`` is passed through: the row *is* the box (any shape but ``()``, its own
  dtype);
* when every leaf shares one dtype (for example all ``float32``), the row is a 1-D array of that
  dtype, leaves packed back to back (no padding, no bytes);
* otherwise the row is ``uint8`` bytes; each leaf starts at an offset aligned to its itemsize
  and the row length is a multiple of the largest itemsize, so that ``torch.Tensor.view(dtype)``
  works on slices of a batch of rows (see :func:`fugu.ops.emulation.restore`).

Example:
    >>> from gymnasium import spaces
    >>> space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "id": spaces.Discrete(3)})
    >>> layout = SpaceLayout.from_space(space)
    >>> [(leaf.name, leaf.offset, leaf.shape, str(leaf.dtype)) for leaf in layout.leaves]
    [('id', 0, (), 'int64'), ('pos', 8, (2,), 'float32')]
    >>> layout.row_shape, layout.row_dtype
    ((16,), dtype('uint8'))
    >>> row = np.zeros(layout.row_shape, layout.row_dtype)
    >>> layout.write(row, {"pos": np.array([0.5, -0.5], np.float32), "id": 2})
    >>> restored = layout.unflatten(row)
    >>> int(restored["id"]), restored["pos"].tolist()
    (2, [0.5, -0.5])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.errors import EnvContractError

__all__ = ["Leaf", "Path", "SpaceLayout", "leaf_bounds", "space_leaves"]

Path = tuple[Any, ...]
"""Keys (Dict) and indices (Tuple) leading from the root space to a leaf."""

_LEAF_TYPES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


@dataclass(frozen=True)
class Leaf:
    """One leaf of a flattened space: where its values live in a row.

    Attributes:
        path: Keys/indices from the root space to this leaf (``()`` for a top-level leaf).
        name: The leaf's field name in the structured dtype: the path joined by ``/``.
        space: The leaf space (``Box``, ``Discrete``, ``MultiDiscrete`` or ``MultiBinary``).
        offset: Byte offset of the leaf in the row.
        shape: Shape of the leaf's values.
        dtype: Dtype of the leaf's values.
    """

    path: Path
    name: str
    space: spaces.Space
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        """Number of elements of the leaf."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Number of bytes of the leaf."""
        return self.size * self.dtype.itemsize


def space_leaves(space: spaces.Space, path: Path = ()) -> list[tuple[Path, spaces.Space]]:
    """The leaves of a nested space in depth-first order, with their paths.

    Raises:
        EnvContractError: For spaces emulation cannot flatten (Text, Graph, Sequence, ...)
            or for a ``Dict``/``Tuple`` without leaves.

    Example:
        >>> space = spaces.Tuple((spaces.Discrete(2), spaces.Dict({"x": spaces.MultiBinary(3)})))
        >>> [p for p, _ in space_leaves(space)]
        [(0,), (1, 'x')]
    """
    if isinstance(space, spaces.Dict):
        out: list[tuple[Path, spaces.Space]] = []
        for key, sub in space.spaces.items():
            out.extend(space_leaves(sub, (*path, key)))
        if not out:
            raise EnvContractError(f"space at path {path} is an empty Dict; give it a leaf")
        return out
    if isinstance(space, spaces.Tuple):
        out = []
        for index, sub in enumerate(space.spaces):
            out.extend(space_leaves(sub, (*path, index)))
        if not out:
            raise EnvContractError(f"space at path {path} is an empty Tuple; give it a leaf")
        return out
    if isinstance(space, _LEAF_TYPES):
        return [(path, space)]
    raise EnvContractError(
        f"cannot flatten {space!r} at path {path}: emulation supports Dict, Tuple, Box, "
        "Discrete, MultiDiscrete and MultiBinary spaces"
    )


def _leaf_shape(space: spaces.Space) -> tuple[int, ...]:
    if isinstance(space, spaces.Discrete):
        return ()
    return tuple(int(n) for n in space.shape)  # type: ignore[union-attr]


def leaf_bounds(space: spaces.Space) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive ``(low, high)`` of a leaf space, shaped like the leaf.

    Example:
        >>> leaf_bounds(spaces.Discrete(3, start=1))
        (array(1), array(3))
    """
    if isinstance(space, spaces.Box):
        return np.asarray(space.low), np.asarray(space.high)
    if isinstance(space, spaces.Discrete):
        start = np.asarray(space.start, dtype=np.int64)
        return start, np.asarray(start + int(space.n) - 1, dtype=np.int64)
    if isinstance(space, spaces.MultiDiscrete):
        start = np.asarray(space.start, dtype=np.int64)
        return start, start + np.asarray(space.nvec, dtype=np.int64) - 1
    if isinstance(space, spaces.MultiBinary):
        shape = _leaf_shape(space)
        return np.zeros(shape, np.int64), np.ones(shape, np.int64)
    raise EnvContractError(f"{space!r} is not a leaf space")


def _field_name(path: Path) -> str:
    return "/".join(str(key) for key in path) if path else "value"


def _build_writer(space: spaces.Space, path: Path, views: dict[Path, np.ndarray]) -> Callable:
    """A function writing a sample of ``space`` into the leaf views, leaf by leaf."""
    if isinstance(space, spaces.Dict):
        items = [(key, _build_writer(sub, (*path, key), views)) for key, sub in space.items()]

        def write_dict(sample: Any) -> None:
            for key, write in items:
                write(sample[key])

        return write_dict
    if isinstance(space, spaces.Tuple):
        subs = [_build_writer(sub, (*path, i), views) for i, sub in enumerate(space.spaces)]

        def write_tuple(sample: Any) -> None:
            for write, value in zip(subs, sample):
                write(value)

        return write_tuple
    view = views[path]

    def write_leaf(value: Any) -> None:
        view[...] = value

    return write_leaf


class SpaceLayout:
    """Where every leaf of a (nested) space lives in one flat row.

    Build it with :meth:`from_space`. The layout is immutable and cheap to pickle.

    Attributes:
        space: The space that was flattened.
        leaves: The leaves, in depth-first order of the space.
        row_dtype: Dtype of a row: the shared leaf dtype, or ``uint8`` for bytes rows.
        row_shape: Shape of one row (``(n,)``, or the box shape for a top-level ``Box``).
        nbytes: Bytes per row (including alignment padding for bytes rows).
        dtype: Structured dtype with one field per leaf (named :attr:`Leaf.name`).
        is_passthrough: The space is a top-level ``Box``: rows are the box values as they are.
    """

    def __init__(
        self,
        space: spaces.Space,
        leaves: list[Leaf],
        row_dtype: np.dtype,
        *,
        passthrough: bool | None = None,
        row_bytes: int | None = None,
    ) -> None:
        self.space = space
        self.leaves: tuple[Leaf, ...] = tuple(leaves)
        self.row_dtype = np.dtype(row_dtype)
        if passthrough is None:
            passthrough = (
                isinstance(space, spaces.Box)
                and space.shape != ()
                and self.row_dtype == space.dtype
            )
        self.is_passthrough = bool(passthrough)
        align = max(leaf.dtype.itemsize for leaf in leaves)
        end = max(leaf.offset + leaf.nbytes for leaf in leaves)
        natural = -(-end // align) * align
        self.nbytes = natural if row_bytes is None else int(row_bytes)
        if self.nbytes < natural or self.nbytes % align:
            raise EnvContractError(
                f"a row of {self.nbytes} bytes cannot hold the leaves of {space!r} (needs a "
                f"multiple of {align} bytes, at least {natural})"
            )
        if self.is_passthrough:
            self.row_shape: tuple[int, ...] = tuple(int(n) for n in space.shape)  # type: ignore[union-attr]
        else:
            self.row_shape = (self.nbytes // self.row_dtype.itemsize,)
        self.dtype = np.dtype(
            {
                "names": [leaf.name for leaf in leaves],
                "formats": [
                    (leaf.dtype, leaf.shape) if leaf.shape else leaf.dtype for leaf in leaves
                ],
                "offsets": [leaf.offset for leaf in leaves],
                "itemsize": self.nbytes,
            }
        )
        self._by_name = {leaf.name: leaf for leaf in leaves}

    @classmethod
    def from_space(cls, space: spaces.Space) -> SpaceLayout:
        """Lay out ``space`` following the row dtype rule of this module."""
        found = space_leaves(space)
        names = [_field_name(path) for path, _ in found]
        if len(set(names)) != len(names):
            raise EnvContractError(
                f"leaf names {names} collide in {space!r}; avoid '/' in Dict keys"
            )
        dtypes = [np.dtype(sub.dtype) for _, sub in found]  # type: ignore[arg-type]
        homogeneous = all(d == dtypes[0] for d in dtypes)
        row_dtype = dtypes[0] if homogeneous else np.dtype(np.uint8)
        leaves: list[Leaf] = []
        offset = 0
        for (path, sub), name, dtype in zip(found, names, dtypes):
            offset = -(-offset // dtype.itemsize) * dtype.itemsize  # align to the itemsize
            leaf = Leaf(path, name, sub, offset, _leaf_shape(sub), dtype)
            leaves.append(leaf)
            offset += leaf.nbytes
        return cls(space, leaves, row_dtype)

    def __repr__(self) -> str:
        fields = ", ".join(f"{leaf.name}:{leaf.dtype}{list(leaf.shape)}" for leaf in self.leaves)
        return f"SpaceLayout({fields}; row {self.row_dtype}{list(self.row_shape)})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "leaves": self.leaves,
            "row_dtype": self.row_dtype,
            "passthrough": self.is_passthrough,
            "row_bytes": self.nbytes,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["space"],
            list(state["leaves"]),
            state["row_dtype"],
            passthrough=state["passthrough"],
            row_bytes=state["row_bytes"],
        )

    def leaf(self, name: str) -> Leaf:
        """The leaf called ``name`` (its path joined by ``/``)."""
        return self._by_name[name]

    # -- the row as a Box space ----------------------------------------------------------------
    def row_space(self) -> spaces.Box:
        """The ``Box`` describing one row: the env's ``single_observation_space``.

        Bytes rows are ``Box(0, 255, (nbytes,), uint8)``; rows of a shared dtype carry the
        bounds of their leaves (padding elements are bounded by ``[0, 0]``).
        """
        if self.is_passthrough:
            return self.space  # type: ignore[return-value]
        if self.row_dtype == np.bool_:
            return spaces.Box(0, 1, self.row_shape, np.bool_)
        if any(leaf.dtype != self.row_dtype for leaf in self.leaves):  # bytes row
            return spaces.Box(0, 255, self.row_shape, np.uint8)
        low = np.zeros(self.row_shape, self.row_dtype)
        high = np.zeros(self.row_shape, self.row_dtype)
        item = self.row_dtype.itemsize
        for leaf in self.leaves:
            lo, hi = leaf_bounds(leaf.space)
            start = leaf.offset // item
            low[start : start + leaf.size] = np.broadcast_to(lo, leaf.shape).ravel()
            high[start : start + leaf.size] = np.broadcast_to(hi, leaf.shape).ravel()
        return spaces.Box(low, high, dtype=self.row_dtype.type)  # type: ignore[arg-type]

    # -- views ------------------------------------------------------------------------------
    def view(self, rows: np.ndarray) -> np.ndarray:
        """The structured view of ``rows`` (shape ``[*batch, *row_shape]``): shape ``[*batch]``.

        ``layout.view(rows)[leaf.name]`` is a writable view of that leaf for every row.
        """
        batch = rows.shape[: rows.ndim - len(self.row_shape)]
        if tuple(rows.shape[len(batch) :]) != self.row_shape or rows.dtype != self.row_dtype:
            raise EnvContractError(
                f"rows must have trailing shape {self.row_shape} and dtype {self.row_dtype}, "
                f"got shape {rows.shape} and dtype {rows.dtype}"
            )
        flat = rows.reshape(*batch, -1)
        if rows.size and not np.may_share_memory(flat, rows):
            raise EnvContractError("rows must be contiguous in their last axes to be viewed")
        return flat.view(self.dtype)[..., 0]

    def unflatten(self, rows: np.ndarray) -> Any:
        """The nested sample(s) held by ``rows``, as dicts/tuples of array views (no copy).

        ``rows`` may be one row or a batch of rows; leaves keep the leading batch shape.
        """
        if self.is_passthrough:
            return rows
        struct = self.view(rows)
        return _nest(self.space, (), lambda path: struct[_field_name(path)])

    def writer(self, row: np.ndarray, at: Path = ()) -> Callable[[Any], None]:
        """A function writing one sample of the space into ``row`` in place.

        The leaf views are computed once, so calling the writer allocates nothing.

        Args:
            row: One row of this layout.
            at: Write only the sub-space at this path (its sample) instead of the whole space.
        """
        if self.is_passthrough:
            view = row

            def write_box(sample: Any) -> None:
                view[...] = sample

            return write_box
        struct = self.view(row)
        views = {leaf.path: struct[leaf.name] for leaf in self.leaves}
        space = self.space
        for key in at:
            space = space[key]  # type: ignore[index]
        return _build_writer(space, tuple(at), views)

    def write(self, row: np.ndarray, sample: Any) -> None:
        """Write one sample of the space into ``row`` in place (builds views each call)."""
        self.writer(row)(sample)

    def flatten(self, sample: Any) -> np.ndarray:
        """A new row holding ``sample`` (padding bytes are zero)."""
        row = np.zeros(self.row_shape, self.row_dtype)
        self.write(row, sample)
        return row

    def as_bytes(self) -> SpaceLayout:
        """The same leaf offsets over a ``uint8`` row (to pad heterogeneous rows together)."""
        return SpaceLayout(
            self.space,
            list(self.leaves),
            np.dtype(np.uint8),
            passthrough=False,
            row_bytes=self.nbytes,
        )

    def padded(self, length: int) -> SpaceLayout:
        """The same leaves over a longer 1-D row of ``length`` elements (padding at the end)."""
        return SpaceLayout(
            self.space,
            list(self.leaves),
            self.row_dtype,
            passthrough=False,
            row_bytes=int(length) * self.row_dtype.itemsize,
        )


def _nest(space: spaces.Space, path: Path, get: Callable[[Path], Any]) -> Any:
    if isinstance(space, spaces.Dict):
        return {key: _nest(sub, (*path, key), get) for key, sub in space.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_nest(sub, (*path, i), get) for i, sub in enumerate(space.spaces))
    return get(path)
