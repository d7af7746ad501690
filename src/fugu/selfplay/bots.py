"""Scripted connect4 opponents as actors: random, one-ply and depth-N alpha-beta minimax.

Each bot is an :class:`~fugu.algos.base.Actor` reading ``connect4-v1`` observations (``[0:42]``
own stones, ``[42:84]`` the opponent's, row-major with the top row first, ``[91]`` whose turn
it is), so it can take any row of a self-play env, in training (a pool's scripted slot) or in
a head-to-head evaluation. Rows whose turn it is not get action 0 (the env ignores them).

* :class:`RandomBot`: a uniformly random legal column.
* :class:`OnePlyBot`: a winning move if there is one, else block the opponent's immediate win,
  else a random legal column (the same rule as the env's built-in ``one_ply`` opponent).
* :class:`AlphaBetaBot`: negamax with alpha-beta pruning to ``depth`` plies (the bot's own
  move counts as one), leaves scored by the difference in open threats (empty cells that
  would complete four) and centre stones; faster wins and slower losses score higher, and
  ties between equally good columns are broken at random. Depth 1 takes wins; depth 2 also
  sees the opponent's immediate replies (it blocks).

The search runs in one numba kernel over all rows (bitboards: bit ``7 c + h`` is column ``c``
at height ``h``, the seventh bit of a column always empty).

Example:
    >>> import numpy as np, torch
    >>> from fugu.envs.connect4 import Connect4
    >>> env = Connect4(num_envs=1, seed=0)
    >>> obs, _ = env.reset()
    >>> bot = AlphaBetaBot(depth=4, seed=0)
    >>> out = bot.act(torch.from_numpy(obs), None, {})
    >>> int(out.actions[0])  # an empty board: the centre column is worth most
    3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numba import njit
from torch import Tensor

from fugu.algos.base import ActOutput
from fugu.core.errors import APIUsageError
from fugu.envs.connect4 import COLS, OBS_SIZE, ROWS, has_won

__all__ = ["AlphaBetaBot", "OnePlyBot", "RandomBot", "make_bot"]

_ORDER = np.array([3, 2, 4, 1, 5, 0, 6], dtype=np.int64)  # centre first: better pruning
_WIN = 10_000.0


@njit(cache=True, nogil=True)
def _decode(obs: np.ndarray, row: int) -> tuple[np.uint64, np.uint64]:  # pragma: no cover
    """The (own, opponent) bitboards of observation ``row``."""
    own = np.uint64(0)
    other = np.uint64(0)
    for r in range(ROWS):
        h = ROWS - 1 - r
        for c in range(COLS):
            bit = np.uint64(1) << np.uint64(7 * c + h)
            if obs[row, r * COLS + c] > 0.5:
                own |= bit
            if obs[row, ROWS * COLS + r * COLS + c] > 0.5:
                other |= bit
    return own, other


@njit(cache=True, nogil=True, inline="always")
def _drop(mask: np.uint64, c: int) -> np.uint64:  # pragma: no cover - numba
    """The bit a stone dropped in column ``c`` lands on (0 if the column is full)."""
    column = np.uint64(0x3F) << np.uint64(7 * c)
    bit = (mask + (np.uint64(1) << np.uint64(7 * c))) & column
    return bit


@njit(cache=True, nogil=True)
def _threats(p: np.uint64, mask: np.uint64) -> np.uint64:  # pragma: no cover - numba
    """Empty cells where a stone of ``p`` would complete four."""
    r = (p << np.uint64(1)) & (p << np.uint64(2)) & (p << np.uint64(3))
    for s in (7, 6, 8):
        s1, s2, s3 = np.uint64(s), np.uint64(2 * s), np.uint64(3 * s)
        t = (p << s1) & (p << s2)
        r |= t & (p << s3)
        r |= t & (p >> s1)
        t = (p >> s1) & (p >> s2)
        r |= t & (p << s1)
        r |= t & (p >> s3)
    board = np.uint64(0)
    for c in range(COLS):
        board |= np.uint64(0x3F) << np.uint64(7 * c)
    return r & (board ^ mask)


@njit(cache=True, nogil=True)
def _popcount(x: np.uint64) -> int:  # pragma: no cover - numba
    count = 0
    while x:
        x &= x - np.uint64(1)
        count += 1
    return count


@njit(cache=True, nogil=True)
def _evaluate(me: np.uint64, other: np.uint64) -> float:  # pragma: no cover - numba
    mask = me | other
    centre = np.uint64(0x3F) << np.uint64(21)
    return 4.0 * (_popcount(_threats(me, mask)) - _popcount(_threats(other, mask))) + (
        _popcount(me & centre) - _popcount(other & centre)
    )


@njit(cache=True, nogil=True)
def _negamax(
    me: np.uint64, other: np.uint64, depth: int, alpha: float, beta: float
) -> float:  # pragma: no cover - numba
    """Value for the side to move (``me``) searching ``depth`` more plies."""
    mask = me | other
    any_legal = False
    for c in range(COLS):
        bit = _drop(mask, c)
        if bit:
            any_legal = True
            if has_won(me | bit):
                return _WIN + depth
    if not any_legal:
        return 0.0
    if depth <= 0:
        return _evaluate(me, other)
    best = -2.0 * _WIN
    for k in range(COLS):
        c = _ORDER[k]
        bit = _drop(mask, c)
        if not bit:
            continue
        value = -_negamax(other, me | bit, depth - 1, -beta, -alpha)
        if value > best:
            best = value
        if best > alpha:
            alpha = best
        if alpha >= beta:
            break
    return best


@njit(cache=True, nogil=True)
def _alpha_beta_moves(
    obs: np.ndarray, depth: int, noise: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - numba
    for row in range(obs.shape[0]):
        out[row] = 0
        if obs[row, OBS_SIZE - 1] < 0.5:
            continue
        me, other = _decode(obs, row)
        mask = me | other
        best = -4.0 * _WIN
        for c in range(COLS):
            bit = _drop(mask, c)
            if not bit:
                continue
            if has_won(me | bit):
                value = _WIN + depth
            else:
                value = -_negamax(other, me | bit, depth - 1, -4.0 * _WIN, 4.0 * _WIN)
            value += noise[row, c]  # < 0.5: breaks ties only (values are whole numbers)
            if value > best:
                best = value
                out[row] = c


@njit(cache=True, nogil=True)
def _one_ply_moves(obs: np.ndarray, noise: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for row in range(obs.shape[0]):
        out[row] = 0
        if obs[row, OBS_SIZE - 1] < 0.5:
            continue
        me, other = _decode(obs, row)
        mask = me | other
        chosen = -1
        for side in range(2):
            stones = me if side == 0 else other
            for c in range(COLS):
                bit = _drop(mask, c)
                if bit and chosen < 0 and has_won(stones | bit):
                    chosen = c
        if chosen < 0:
            best = -1.0
            for c in range(COLS):
                if _drop(mask, c) and noise[row, c] > best:
                    best = noise[row, c]
                    chosen = c
        out[row] = max(chosen, 0)


class _Bot:
    """Shared parts of the scripted bots: no recurrent state, a seeded generator."""

    name = "bot"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def initial_state(self, num_rows: int) -> Any:
        """No recurrent state."""
        return None

    def reset_state(self, state: Any, starts: Tensor) -> Any:
        """No recurrent state."""
        return None

    def act(
        self,
        obs: Tensor,
        state: Any,
        extras: Mapping[str, Tensor],
        deterministic: bool = False,
    ) -> ActOutput:
        """Columns for the rows whose turn it is (0 elsewhere)."""
        array = np.ascontiguousarray(obs.detach().cpu().numpy(), dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != OBS_SIZE:
            raise APIUsageError(
                f"{type(self).__name__} plays connect4-v1 observations [B, {OBS_SIZE}], got "
                f"{tuple(array.shape)}"
            )
        out = np.zeros(len(array), dtype=np.int64)
        self._moves(array, out)
        return ActOutput(torch.from_numpy(out), {}, None)

    def _moves(self, obs: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError


class RandomBot(_Bot):
    """A uniformly random legal column."""

    name = "random"

    def _moves(self, obs: np.ndarray, out: np.ndarray) -> None:
        noise = self.rng.random((len(obs), COLS)) * (obs[:, 2 * ROWS * COLS : -1] > 0.5)
        out[:] = noise.argmax(1)


class OnePlyBot(_Bot):
    """Win if possible, else block the opponent's immediate win, else a random legal column."""

    name = "one_ply"

    def _moves(self, obs: np.ndarray, out: np.ndarray) -> None:
        _one_ply_moves(obs, self.rng.random((len(obs), COLS)), out)


class AlphaBetaBot(_Bot):
    """Depth-``depth`` alpha-beta minimax (ties broken at random).

    Args:
        depth: Plies searched, the bot's own move included (>= 1).
        seed: Seed of the tie-breaking generator.
    """

    def __init__(self, depth: int = 4, seed: int = 0) -> None:
        if depth < 1:
            raise APIUsageError(f"alpha-beta depth must be >= 1, got {depth}")
        super().__init__(seed)
        self.depth = int(depth)
        self.name = f"alphabeta{depth}"

    def _moves(self, obs: np.ndarray, out: np.ndarray) -> None:
        _alpha_beta_moves(obs, self.depth, self.rng.random((len(obs), COLS)) * 0.4, out)


def make_bot(spec: str, seed: int = 0) -> _Bot:
    """A bot from its name: ``random``, ``one_ply`` or ``alphabetaN`` (``alphabeta4``).

    Example:
        >>> make_bot("alphabeta2").depth, make_bot("one_ply").name
        (2, 'one_ply')
    """
    if spec == "random":
        return RandomBot(seed)
    if spec in ("one_ply", "one-ply", "oneply"):
        return OnePlyBot(seed)
    if spec.startswith("alphabeta") and spec[len("alphabeta") :].lstrip(":-").isdigit():
        return AlphaBetaBot(int(spec[len("alphabeta") :].lstrip(":-")), seed)
    raise APIUsageError(
        f"unknown bot {spec!r}: use 'random', 'one_ply' or 'alphabetaN' (e.g. 'alphabeta4')"
    )
