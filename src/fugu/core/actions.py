"""Structured action spaces as one flat action row of the env contract (numpy only).

The contract's ``single_action_space`` is ``Discrete``, ``MultiDiscrete`` or ``Box``. An
:class:`ActionLayout` maps any (nested) gymnasium action space onto one of them and decodes an
action row back into the nested action the wrapped env expects:

* a top-level ``Discrete(n, start)`` becomes ``Discrete(n)``: the row holds ``a - start``;
* a top-level ``MultiDiscrete`` (any shape, any ``start``) or ``MultiBinary`` becomes a flat
  ``MultiDiscrete`` (``MultiBinary`` components have 2 choices);
* a top-level ``Box`` is passed through (the action buffer is ``float32``; other box dtypes are
  cast, integer boxes rounded, when decoding);
* a ``Dict``/``Tuple`` whose leaves are all discrete becomes one ``MultiDiscrete`` (components
  of the leaves in depth-first order); all continuous, one flat ``float32`` ``Box``;
* **mixed** discrete and continuous leaves become one ``float32`` ``Box`` row: the first
  :attr:`ActionLayout.num_discrete` entries are the discrete components, stored as floats in
  ``[0, nvec - 1]`` (decoding rounds to the nearest integer and clips), followed by the
  continuous components. A policy reads :attr:`ActionLayout.nvec` to put categorical heads on
  the first part and a Gaussian on the rest (``row[:num_discrete]`` / ``row[num_discrete:]``).

Example:
    >>> from gymnasium import spaces
    >>> space = spaces.Dict({"move": spaces.Discrete(3, start=-1), "force": spaces.Box(0, 1, (2,))})
    >>> layout = ActionLayout.from_space(space)
    >>> layout.kind, layout.single_action_space
    ('mixed', Box(0.0, [2. 1. 1.], (3,), float32))
    >>> action = layout.decode(np.array([2.0, 0.25, 0.5], np.float32))
    >>> int(action["move"]), action["force"].tolist()
    (1, [0.25, 0.5])
    >>> layout.encode(action).tolist()
    [2.0, 0.25, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.flatten import Path, space_leaves

__all__ = ["ActionLayout", "ActionLeaf"]


@dataclass(frozen=True)
class ActionLeaf:
    """One leaf of an action space and the entries of the action row that hold it.

    Attributes:
        path: Keys/indices from the root space to this leaf.
        space: The leaf space.
        is_discrete: ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` (else ``Box``).
        index: First entry of the leaf in the flat action row.
        size: Number of entries.
        shape: Shape of the leaf's action.
    """

    path: Path
    space: spaces.Space
    is_discrete: bool
    index: int
    size: int
    shape: tuple[int, ...]

    @property
    def start(self) -> np.ndarray:
        """The value of choice 0 of every discrete component (zeros for MultiBinary)."""
        if isinstance(self.space, (spaces.Discrete, spaces.MultiDiscrete)):
            return np.asarray(self.space.start, dtype=np.int64).reshape(-1)
        return np.zeros(self.size, np.int64)


def _nvec(space: spaces.Space) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        return np.array([int(space.n)], np.int64)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.nvec, np.int64).reshape(-1)
    return np.full(int(np.prod(space.shape)), 2, np.int64)  # type: ignore[arg-type]


class ActionLayout:
    """How a (nested) action space is carried by the flat action row of the contract.

    Build it with :meth:`from_space`.

    Attributes:
        space: The original action space.
        leaves: The leaves in depth-first order with their row entries.
        kind: ``"discrete"``, ``"continuous"`` or ``"mixed"``.
        nvec: Number of choices of each discrete component (empty when none).
        num_discrete: Number of discrete components (they come first in a mixed row).
        num_continuous: Number of continuous components.
        single_action_space: The flat ``Discrete``/``MultiDiscrete``/``Box`` space of a row.
        is_identity: Decoding returns the row entry itself (plain ``Discrete(n)`` or a
            ``float32`` ``Box``): a fast path for wrappers.
    """

    def __init__(self, space: spaces.Space) -> None:
        self.space = space
        found = space_leaves(space)
        discrete = [(p, s) for p, s in found if not isinstance(s, spaces.Box)]
        continuous = [(p, s) for p, s in found if isinstance(s, spaces.Box)]
        self.num_discrete = sum(int(_nvec(s).size) for _, s in discrete)
        self.num_continuous = sum(int(np.prod(s.shape)) for _, s in continuous)
        self.kind = "mixed" if discrete and continuous else "discrete" if discrete else "continuous"
        self.nvec = (
            np.concatenate([_nvec(s) for _, s in discrete]) if discrete else np.zeros(0, np.int64)
        )
        leaves: dict[Path, ActionLeaf] = {}
        index = 0
        for path, sub in discrete:
            size = int(_nvec(sub).size)
            shape = () if isinstance(sub, spaces.Discrete) else tuple(sub.shape)  # type: ignore[arg-type]
            leaves[path] = ActionLeaf(path, sub, True, index, size, shape)
            index += size
        for path, sub in continuous:
            size = int(np.prod(sub.shape))  # type: ignore[arg-type]
            leaves[path] = ActionLeaf(path, sub, False, index, size, tuple(sub.shape))  # type: ignore[arg-type]
            index += size
        self.leaves: tuple[ActionLeaf, ...] = tuple(leaves[path] for path, _ in found)
        self.single_action_space = self._flat_space(continuous)
        self.is_identity = (isinstance(space, spaces.Discrete) and int(space.start) == 0) or (
            isinstance(space, spaces.Box) and np.dtype(space.dtype) == np.float32
        )
        self._decode = self._build_decoder(space, ())

    @classmethod
    def from_space(cls, space: spaces.Space) -> ActionLayout:
        """Lay out ``space`` (see the module docstring for the scheme)."""
        return cls(space)

    def __repr__(self) -> str:
        return f"ActionLayout({self.kind}, {self.single_action_space!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"space": self.space}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["space"])  # type: ignore[misc]

    def _flat_space(self, continuous: list[tuple[Path, spaces.Space]]) -> spaces.Space:
        if isinstance(self.space, spaces.Discrete):
            return spaces.Discrete(int(self.space.n))
        if isinstance(self.space, spaces.Box):
            low, high = self.space.low.astype(np.float32), self.space.high.astype(np.float32)
            return spaces.Box(low, high, dtype=np.float32)
        if self.kind == "discrete":
            return spaces.MultiDiscrete(self.nvec)
        lows = [np.zeros(self.num_discrete, np.float32)]
        highs = [(self.nvec - 1).astype(np.float32)]
        for _, sub in continuous:
            lows.append(np.asarray(sub.low, np.float32).reshape(-1))  # type: ignore[attr-defined]
            highs.append(np.asarray(sub.high, np.float32).reshape(-1))  # type: ignore[attr-defined]
        return spaces.Box(np.concatenate(lows), np.concatenate(highs), dtype=np.float32)

    # -- decoding (row -> nested action) ----------------------------------------------------
    def _build_decoder(self, space: spaces.Space, path: Path) -> Callable[[np.ndarray], Any]:
        if isinstance(space, spaces.Dict):
            items = [(k, self._build_decoder(s, (*path, k))) for k, s in space.items()]
            return lambda row: {key: decode(row) for key, decode in items}
        if isinstance(space, spaces.Tuple):
            subs = [self._build_decoder(s, (*path, i)) for i, s in enumerate(space.spaces)]
            return lambda row: tuple(decode(row) for decode in subs)
        leaf = next(leaf for leaf in self.leaves if leaf.path == path)
        return _leaf_decoder(leaf, self.kind == "mixed")

    def decode(self, row: Any) -> Any:
        """The nested action held by one action row (a numpy array or scalar)."""
        return self._decode(np.asarray(row))

    def encode(self, action: Any) -> np.ndarray:
        """The action row of a nested action (inverse of :meth:`decode`)."""
        dtype = np.float32 if isinstance(self.single_action_space, spaces.Box) else np.int32
        row = np.zeros(self.single_action_space.shape, dtype)
        flat = row.reshape(-1)
        for leaf in self.leaves:
            value: Any = action
            for key in leaf.path:
                value = value[key]
            value = np.asarray(value).reshape(-1)
            if leaf.is_discrete:
                value = value.astype(np.int64) - leaf.start
            flat[leaf.index : leaf.index + leaf.size] = value
        return row


def _leaf_decoder(leaf: ActionLeaf, mixed: bool) -> Callable[[np.ndarray], Any]:
    """Decode one leaf from a full action row."""
    space, lo, hi = leaf.space, leaf.index, leaf.index + leaf.size
    if isinstance(space, spaces.Box):
        dtype = np.dtype(space.dtype)  # type: ignore[arg-type]
        shape = leaf.shape
        if np.issubdtype(dtype, np.integer):
            return lambda row: np.rint(row.reshape(-1)[lo:hi]).astype(dtype).reshape(shape)
        return lambda row: row.reshape(-1)[lo:hi].astype(dtype).reshape(shape)
    start = leaf.start
    maxval = _nvec(space) - 1
    if isinstance(space, spaces.Discrete):
        first = int(start[0])
        if mixed:
            top_n = int(maxval[0])
            return lambda row: np.int64(
                first + min(max(int(np.rint(row.reshape(-1)[lo])), 0), top_n)
            )
        return lambda row: np.int64(first + int(row.reshape(-1)[lo]))
    dtype = np.dtype(space.dtype)  # type: ignore[arg-type]
    shape = leaf.shape
    if mixed:
        return lambda row: (
            (np.clip(np.rint(row.reshape(-1)[lo:hi]), 0, maxval).astype(np.int64) + start)
            .astype(dtype)
            .reshape(shape)
        )
    return lambda row: (row.reshape(-1)[lo:hi] + start).astype(dtype).reshape(shape)
