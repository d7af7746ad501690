"""Safety specifications: which discrete actions are safe in which observation (and state).

A specification answers one question for a batch of rows: given each row's observation (and,
for a safety automaton, the automaton state the row has reached), which actions are safe?
:class:`SafetySpec` is the small base every shield (:mod:`fugu.safety.shield`) uses; three
kinds are provided:

- :class:`PredicateSpec`: a predicate ``safe(observations, actions) -> bool[rows]``;
- :class:`TableSpec`: a state-encoding function and a ``[num_states, num_actions]`` table of
  safe actions (what solving a safety game produces, :func:`fugu.safety.game.solve_safety_game`);
- :class:`SafetyAutomaton`: a finite automaton reading the label of each observation and the
  action taken, with unsafe states; an action is safe when it does not lead to one.

Everything is numpy, vectorized over rows, with no torch.

Example:
    >>> import numpy as np
    >>> spec = PredicateSpec(lambda obs, act: ~((obs[:, 0] > 0.5) & (act == 1)), num_actions=2)
    >>> spec.allowed(np.array([[0.2], [0.9]], dtype=np.float32)).tolist()
    [[True, True], [True, False]]
    >>> spec.fallback(np.array([[True, False], [False, True]])).tolist()
    [0, 1]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["PredicateSpec", "SafetyAutomaton", "SafetySpec", "TableSpec"]

Observations = np.ndarray
Predicate = Callable[[np.ndarray, np.ndarray], np.ndarray]


class SafetySpec:
    """The safe actions of each row; subclasses implement :meth:`allowed`.

    Stateless specs ignore :meth:`reset` and :meth:`advance`; a stateful one (an automaton)
    keeps one state per row, reset at episode starts and advanced by the action each row took.

    Args:
        num_actions: Size of the Discrete action space.
        fallback_order: Preference order of the actions a shield substitutes (the first safe
            one in this order is the fallback); default ``0, 1, ..., n - 1``.
    """

    def __init__(self, num_actions: int, fallback_order: tuple[int, ...] | None = None) -> None:
        if int(num_actions) < 1:
            raise APIUsageError(f"num_actions must be >= 1, got {num_actions}")
        self.num_actions = int(num_actions)
        order = tuple(range(self.num_actions)) if fallback_order is None else fallback_order
        if sorted(order) != list(range(self.num_actions)):
            raise APIUsageError(
                f"fallback_order must be a permutation of 0..{self.num_actions - 1}, got {order}"
            )
        self.fallback_order = np.asarray(order, dtype=np.int64)

    def allowed(self, observations: Observations, rows: slice | None = None) -> np.ndarray:
        """bool ``[len(observations), num_actions]``: True where the action is safe.

        ``rows`` says which of the spec's rows the observations belong to (stateful specs).
        """
        raise NotImplementedError

    def reset(self, num_rows: int) -> None:
        """Start every row's state afresh (stateless specs: nothing to do)."""

    def reset_rows(self, done: np.ndarray, rows: slice | None = None) -> None:
        """Start the state of the rows flagged in ``done`` afresh (their episode ended)."""

    def advance(
        self, observations: Observations, actions: np.ndarray, rows: slice | None = None
    ) -> None:
        """Rows took ``actions`` in ``observations``: move their states (stateless: no-op)."""

    def get_state(self) -> np.ndarray:
        """The rows' states (empty for a stateless spec)."""
        return np.zeros(0, dtype=np.int64)

    def set_state(self, state: np.ndarray) -> None:
        """Restore :meth:`get_state`."""

    def fallback(self, allowed: np.ndarray) -> np.ndarray:
        """int64 ``[rows]``: each row's first safe action in ``fallback_order`` (the first in
        that order when none is safe: a dead end, which a well-formed spec never reaches)."""
        ordered = allowed[:, self.fallback_order]
        first = np.argmax(ordered, axis=1)
        return self.fallback_order[first]  # type: ignore[no-any-return]


class PredicateSpec(SafetySpec):
    """Safe actions given by a predicate over observations and actions.

    Args:
        safe: ``safe(observations [R, d], actions int64 [R]) -> bool [R]``, vectorized.
        num_actions: Size of the Discrete action space.
        fallback_order: See :class:`SafetySpec`.
    """

    def __init__(
        self, safe: Predicate, num_actions: int, fallback_order: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(num_actions, fallback_order)
        self.safe = safe

    def allowed(self, observations: Observations, rows: slice | None = None) -> np.ndarray:
        """Evaluate the predicate once per action."""
        obs = np.asarray(observations)
        out = np.empty((obs.shape[0], self.num_actions), dtype=bool)
        for a in range(self.num_actions):
            actions = np.full(obs.shape[0], a, dtype=np.int64)
            out[:, a] = np.asarray(self.safe(obs, actions), dtype=bool)
        return out


class TableSpec(SafetySpec):
    """Safe actions looked up in a table by an encoded state.

    Args:
        encode: ``encode(observations [R, d]) -> int64 [R]``, each row's state index.
        table: bool ``[num_states, num_actions]``, True where the action is safe.
        fallback_order: See :class:`SafetySpec`.
    """

    def __init__(
        self,
        encode: Callable[[np.ndarray], np.ndarray],
        table: np.ndarray,
        fallback_order: tuple[int, ...] | None = None,
    ) -> None:
        table = np.asarray(table, dtype=bool)
        if table.ndim != 2:
            raise APIUsageError(f"table must be [num_states, num_actions], got {table.shape}")
        super().__init__(table.shape[1], fallback_order)
        self.encode = encode
        self.table = table

    def allowed(self, observations: Observations, rows: slice | None = None) -> np.ndarray:
        """The table rows of the encoded states."""
        index = np.asarray(self.encode(np.asarray(observations)), dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.table.shape[0]):
            raise APIUsageError(
                f"encoded states must be in [0, {self.table.shape[0]}), got "
                f"[{index.min()}, {index.max()}]; does the spec match the env's parameters?"
            )
        return self.table[index]  # type: ignore[no-any-return]


class SafetyAutomaton(SafetySpec):
    """A safety automaton over (observation label, action) letters, one state per row.

    Each step a row in state ``q`` sees the label ``l = label(observation)`` and takes action
    ``a``, moving to ``delta[q, l, a]``; the actions that lead to an ``unsafe`` state are not
    safe. Design the automaton so that its safe states are the winning ones (every safe state
    has a safe action), as a shield synthesised from a safety game is.

    Args:
        delta: int ``[num_states, num_labels, num_actions]``: the transition function.
        unsafe: bool ``[num_states]``: the states that must never be entered.
        label: ``label(observations [R, d]) -> int64 [R]`` in ``[0, num_labels)``; default:
            every observation has label 0 (an automaton over actions only).
        initial: The state every episode starts in.
        fallback_order: See :class:`SafetySpec`.

    Example:
        Never take action 1 twice in a row (states: 0 = last action was 0, 1 = it was 1,
        2 = violated):

        >>> delta = np.array([[[0, 1]], [[0, 2]], [[2, 2]]])
        >>> spec = SafetyAutomaton(delta, unsafe=np.array([False, False, True]))
        >>> spec.reset(1)
        >>> obs = np.zeros((1, 1))
        >>> spec.allowed(obs).tolist()
        [[True, True]]
        >>> spec.advance(obs, np.array([1]))
        >>> spec.allowed(obs).tolist()
        [[True, False]]
    """

    def __init__(
        self,
        delta: np.ndarray,
        unsafe: np.ndarray,
        label: Callable[[np.ndarray], np.ndarray] | None = None,
        initial: int = 0,
        fallback_order: tuple[int, ...] | None = None,
    ) -> None:
        delta = np.asarray(delta, dtype=np.int64)
        unsafe = np.asarray(unsafe, dtype=bool)
        if delta.ndim != 3 or unsafe.shape != (delta.shape[0],):
            raise APIUsageError(
                "delta must be [num_states, num_labels, num_actions] and unsafe [num_states], "
                f"got {delta.shape} and {unsafe.shape}"
            )
        if delta.min() < 0 or delta.max() >= delta.shape[0]:
            raise APIUsageError(f"delta's targets must be states in [0, {delta.shape[0]})")
        if not 0 <= initial < delta.shape[0] or unsafe[initial]:
            raise APIUsageError(f"initial state {initial} must be a safe state of the automaton")
        super().__init__(delta.shape[2], fallback_order)
        self.delta = delta
        self.unsafe = unsafe
        self.label = label
        self.initial = int(initial)
        self.states = np.full(0, self.initial, dtype=np.int64)

    def _labels(self, observations: Observations) -> np.ndarray:
        if self.label is None:
            return np.zeros(len(observations), dtype=np.int64)
        labels = np.asarray(self.label(np.asarray(observations)), dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.delta.shape[1]):
            raise APIUsageError(f"labels must be in [0, {self.delta.shape[1]})")
        return labels

    def _rows(self, rows: slice | None, n: int) -> np.ndarray:
        states = self.states if rows is None else self.states[rows]
        if len(states) != n:
            raise APIUsageError(
                f"the automaton holds {len(self.states)} rows; call reset(num_rows) first"
            )
        return states

    def allowed(self, observations: Observations, rows: slice | None = None) -> np.ndarray:
        """Actions whose transition avoids the unsafe states."""
        states = self._rows(rows, len(observations))
        return ~self.unsafe[self.delta[states, self._labels(observations)]]  # type: ignore[no-any-return]

    def reset(self, num_rows: int) -> None:
        """Every row back to the initial state."""
        self.states = np.full(int(num_rows), self.initial, dtype=np.int64)

    def reset_rows(self, done: np.ndarray, rows: slice | None = None) -> None:
        """Rows whose episode ended back to the initial state."""
        view = self.states if rows is None else self.states[rows]
        view[np.asarray(done, dtype=bool)] = self.initial

    def advance(
        self, observations: Observations, actions: np.ndarray, rows: slice | None = None
    ) -> None:
        """Move each row along ``delta[state, label, action]``."""
        view = self.states if rows is None else self.states[rows]
        view[...] = self.delta[view, self._labels(observations), np.asarray(actions, np.int64)]

    def get_state(self) -> np.ndarray:
        """A copy of the rows' states."""
        return self.states.copy()

    def set_state(self, state: np.ndarray) -> None:
        """Restore the rows' states."""
        self.states = np.asarray(state, dtype=np.int64).copy()
