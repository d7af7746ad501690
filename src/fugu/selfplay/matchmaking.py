"""Matchmaking inside one two-player vec env: which rows the learner plays, which an opponent.

A two-player self-play env (``connect4-v1``) has two rows per game, ``2 g`` and ``2 g + 1``.
A :class:`Matchmaker` splits the games into

* **mirror games** (the first ``num_mirror_games``): the learner plays both rows (pure
  self-play; both rows are stored);
* **slots** of equally many games each: the learner plays one row of every game and the
  slot's current opponent (from the pool) the other; only the learner's rows are stored.

In slot games the learner's row alternates with the game index (row ``2 g`` in even games,
``2 g + 1`` in odd ones), and the env alternates the first mover from one game to the next,
so the learner plays both seats, first and second, equally often.

:meth:`Matchmaker.policy_map` gives the :class:`~fugu.train.policy_map.RowPolicyMap` for a
list of opponents (one per slot, the opponents' rows batched per actor in the same env step),
and :meth:`Matchmaker.tally` reads the results of the learner's slot games from a collected
rollout (the learner's reward on the step a game ends: ``+1`` win, ``0`` draw, ``-1`` loss).

Example:
    >>> m = Matchmaker(num_games=6, num_slots=2, num_mirror_games=2)
    >>> m.learner_rows.tolist()  # games 0-1 both rows; then one row per game, alternating
    [0, 1, 2, 3, 4, 7, 8, 11]
    >>> [rows.tolist() for rows in m.slot_rows]  # the opponents' rows
    [[5, 6], [9, 10]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fugu.algos.base import ActOutput
from fugu.core.errors import APIUsageError
from fugu.train.policy_map import RowPolicyMap

__all__ = ["Matchmaker", "OpponentMux"]


class OpponentMux:
    """One actor on every opponent row that batches the rows per policy.

    The slots' opponents change every epoch, and several slots often draw the same opponent;
    the mux groups the rows by actor and calls each distinct actor once per step on all of its
    rows. Opponents must be feed-forward (``initial_state`` ``None``).

    Args:
        slot_of_row: The slot of each of the mux's rows (in the order the rows are given).
        actors: The actor of every slot.
    """

    def __init__(self, slot_of_row: np.ndarray, actors: Sequence[Any]) -> None:
        self.slot_of_row = np.asarray(slot_of_row, dtype=np.int64)
        self.groups: list[tuple[Any, Tensor]] = []
        self.assign(actors)

    def assign(self, actors: Sequence[Any]) -> None:
        """Give slot ``s`` the actor ``actors[s]`` (from the next step on)."""
        groups: dict[int, tuple[Any, list[int]]] = {}
        for s, actor in enumerate(actors):
            if actor.initial_state(1) is not None:
                raise APIUsageError("self-play opponents must be feed-forward (no recurrent state)")
            groups.setdefault(id(actor), (actor, []))[1].append(s)
        self.groups = [
            (actor, torch.from_numpy(np.flatnonzero(np.isin(self.slot_of_row, slots))))
            for actor, slots in groups.values()
        ]

    def initial_state(self, num_rows: int) -> None:
        """No recurrent state."""
        return None

    def reset_state(self, state: Any, starts: Tensor) -> None:
        """No recurrent state."""
        return None

    def act(
        self,
        obs: Tensor,
        state: Any,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Every group's actions, each group's actor called once on its rows."""
        actions: Tensor | None = None
        for actor, index in self.groups:
            part = actor.act(
                obs[index], None, {k: v[index] for k, v in extras.items()}, deterministic
            ).actions
            if actions is None:
                actions = torch.zeros((len(obs), *part.shape[1:]), dtype=part.dtype)
            actions[index] = part.cpu()
        assert actions is not None
        return ActOutput(actions, {}, None)


class Matchmaker:
    """Rows of the learner and of each opponent slot in a two-rows-per-game vec env.

    Args:
        num_games: Games of the env (rows ``2 * num_games``).
        num_slots: Opponent slots (each a run of consecutive games; a slot's opponent is
            resampled every epoch).
        num_mirror_games: Games where the learner plays both rows.
    """

    def __init__(self, num_games: int, num_slots: int, num_mirror_games: int = 0) -> None:
        if num_mirror_games < 0 or num_mirror_games > num_games:
            raise APIUsageError(
                f"num_mirror_games must be in [0, num_games={num_games}], got {num_mirror_games}"
            )
        slot_games = num_games - num_mirror_games
        if num_slots < 0 or (num_slots == 0) != (slot_games == 0) or num_slots > slot_games:
            raise APIUsageError(
                f"{slot_games} games are left for opponents after {num_mirror_games} mirror "
                f"games; num_slots ({num_slots}) must be between 1 and that (0 if none are left)"
            )
        self.num_games = int(num_games)
        self.num_slots = int(num_slots)
        self.num_mirror_games = int(num_mirror_games)
        learner: list[int] = list(range(2 * num_mirror_games))
        bounds = np.linspace(num_mirror_games, num_games, num_slots + 1).round().astype(int)
        self.slot_games = [np.arange(bounds[s], bounds[s + 1]) for s in range(num_slots)]
        slot_rows: list[np.ndarray] = []
        for games in self.slot_games:
            mine = 2 * games + games % 2
            learner += mine.tolist()
            slot_rows.append(2 * games + 1 - games % 2)
        self.learner_rows = np.array(sorted(learner), dtype=np.int64)
        self.slot_rows = slot_rows
        # the stored columns (the learner's rows, in row order) of each slot's games
        column = {int(row): j for j, row in enumerate(self.learner_rows)}
        self.slot_columns = [
            torch.tensor([column[int(2 * g + g % 2)] for g in games], dtype=torch.long)
            for games in self.slot_games
        ]

    @property
    def opponent_rows(self) -> np.ndarray:
        """Every slot's opponent rows, slot after slot."""
        return np.concatenate(self.slot_rows) if self.slot_rows else np.zeros(0, np.int64)

    def mux(self, opponents: Sequence[Any]) -> OpponentMux:
        """An :class:`OpponentMux` with ``opponents[s]`` on slot ``s``'s rows."""
        if len(opponents) != self.num_slots:
            raise APIUsageError(
                f"need {self.num_slots} opponents (one per slot), got {len(opponents)}"
            )
        slots = np.concatenate(
            [np.full(len(rows), s) for s, rows in enumerate(self.slot_rows)]
        ) if self.slot_rows else np.zeros(0, np.int64)  # fmt: skip
        return OpponentMux(slots, opponents)

    def policy_map(self, mux: OpponentMux) -> RowPolicyMap:
        """The row-to-policy map: the learner's rows, and ``mux`` on every opponent row."""
        others = [(mux, self.opponent_rows)] if self.num_slots else []
        return RowPolicyMap(self.learner_rows, others)

    def tally(self, rewards: Tensor, dones: Tensor) -> list[tuple[int, int, int]]:
        """``(wins, draws, losses)`` of the learner in each slot, from a rollout's stored
        ``rewards`` and ``dones`` (``terminals | truncations``), both ``[T, learner rows]``."""
        results = []
        for columns in self.slot_columns:
            r = rewards[:, columns].float()
            d = dones[:, columns]
            results.append(
                (int((d & (r > 0)).sum()), int((d & (r == 0)).sum()), int((d & (r < 0)).sum()))
            )
        return results
