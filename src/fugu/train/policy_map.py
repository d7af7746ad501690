"""Which actor acts on which rows: several policies on one vec env, only the learner's stored.

Self-play opponents, frozen past selves and scripted teammates act on their own rows of the
same vec env as the learner. A :class:`RowPolicyMap` names the learner's rows; every other
row belongs to one of ``others`` (each an :class:`~fugu.algos.base.Actor`: anything with
``initial_state``, ``reset_state`` and ``act``). The trainer stores, learns from and counts
episodes of the learner's rows only.

Example:
    >>> import numpy as np
    >>> m = RowPolicyMap(learner_rows=np.array([0, 2]), others=[(object(), np.array([1, 3]))])
    >>> m.learner_rows.tolist(), m.check(4)
    ([0, 2], None)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["RowPolicyMap"]


@dataclass
class RowPolicyMap:
    """The learner's rows and the other actors' rows of a vec env (global row indices).

    Attributes:
        learner_rows: Rows the learner acts on (and the trainer stores).
        others: ``(actor, rows)`` pairs for every other actor; an actor may be swapped between
            epochs (:meth:`set_actor`), e.g. by a self-play pool sampling a new opponent.
    """

    learner_rows: np.ndarray
    others: list[tuple[Any, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.learner_rows = np.asarray(self.learner_rows, dtype=np.int64)
        self.others = [(actor, np.asarray(rows, dtype=np.int64)) for actor, rows in self.others]

    def set_actor(self, index: int, actor: Any) -> None:
        """Replace the actor of ``others[index]`` (its rows stay)."""
        self.others[index] = (actor, self.others[index][1])

    def check(self, num_rows: int) -> None:
        """Raise unless every row ``[0, num_rows)`` belongs to exactly one actor."""
        parts: Sequence[np.ndarray] = [self.learner_rows, *(rows for _, rows in self.others)]
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if len(rows) != num_rows or not np.array_equal(np.sort(rows), np.arange(num_rows)):
            raise APIUsageError(
                f"RowPolicyMap must give each of the vec env's {num_rows} rows exactly one actor "
                f"(learner rows + other actors' rows: {len(rows)} entries)"
            )
        if len(self.learner_rows) == 0:
            raise APIUsageError("RowPolicyMap needs at least one learner row")

    def local(self, lo: int, hi: int) -> tuple[np.ndarray, list[tuple[Any, np.ndarray]]]:
        """The learner's and the others' rows within ``[lo, hi)``, shifted to start at 0."""

        def inside(rows: np.ndarray) -> np.ndarray:
            return rows[(rows >= lo) & (rows < hi)] - lo

        return inside(self.learner_rows), [(a, inside(r)) for a, r in self.others]
