"""Connect Four: two-player zero-sum board game with legal-action masks and scripted opponents.

The board has 6 rows and 7 columns; action ``c`` drops a stone into column ``c``. Four stones
in a row (horizontal, vertical or diagonal) win: ``+1`` for the winner, ``-1`` for the loser,
``0`` each for a draw (full board). Boards are bitboards (one uint64 per player, 7 bits per
column), so win detection is four shift-and-mask tests.

Two modes:

* ``opponent=None`` (self-play): each game is **two rows**, ``2 g`` and ``2 g + 1``, one per
  player; who moves first alternates from game to game. On every step only the row whose turn
  it is acts: its ``masks`` entry is True and the other row's is False (its action is
  ignored, a no-op). The step that ends a game sets ``terminals`` on **both** rows and gives
  both their reward (winner ``+1``, loser ``-1``, draw ``0``), including the row that was
  waiting. A trainer therefore learns from the rows with ``masks`` True on their observation
  and credits the terminal reward of a waiting row to that row's previous move.
* ``opponent="random"`` or ``"one_ply"``: each game is **one row** played against a built-in
  scripted opponent (for evaluation or single-agent training); the agent moves first in even
  games and second in odd ones (the opponent's opening move is then already on the board).
  ``one_ply`` takes a winning move when it has one, else blocks the agent's immediate win,
  else plays a uniformly random legal move; ``random`` plays uniformly random legal moves.

Observation (float32, 92 values, from the row's own perspective): ``[0:42]`` own stones and
``[42:84]`` opponent stones (row-major, top row first), ``[84:91]`` legal columns, ``[91]`` 1 if
it is this row's turn. The declared extra field ``action_masks`` (bool ``[A, 7]``, written in
place, in ``env.extras`` and every backend's batches) holds the legal columns too. An illegal
action (full column) loses the game with ``illegal_move="lose"``
(default: ``-1`` for the mover, ``+1`` for the opponent) or is replaced by a random legal
column with ``illegal_move="random"``. Infos carry ``win``, ``draw`` and ``illegal`` rates
per episode-row.

Example:
    >>> env = Connect4(num_envs=2, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.masks.tolist()
    ((4, 92), [True, False, True, False])
    >>> env.action_masks[0].tolist()
    [True, True, True, True, True, True, True]
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError
from fugu.core.schema import action_masks_field
from fugu.envs import render as draw
from fugu.envs.native import (
    ACTIONS,
    EPISODE_LENGTH,
    EPISODE_RETURN,
    EPISODE_STATS,
    MASKS,
    OBSERVATIONS,
    REWARDS,
    RNG,
    TERMINALS,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
    rng_integers,
)

__all__ = ["Connect4", "has_won"]

ROWS, COLS = 6, 7
OBS_SIZE = 2 * ROWS * COLS + COLS + 1
_OPPONENTS = {None: 0, "random": 1, "one_ply": 2}
_ILLEGAL = {"lose": 0, "random": 1}
_U1 = np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def has_won(board: np.uint64) -> bool:  # pragma: no cover - numba
    """Whether a bitboard (bit ``7 c + h`` = column ``c``, height ``h``) has four in a row."""
    for s in (1, 7, 6, 8):
        shift = np.uint64(s)
        m = board & (board >> shift)
        if m & (m >> (shift + shift)):
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _bit(col: int, height: int) -> np.uint64:  # pragma: no cover - numba
    return np.uint64(1) << np.uint64(7 * col + height)


@njit(cache=True, nogil=True)
def _random_legal(g: int, heights: np.ndarray, rng: np.ndarray) -> int:  # pragma: no cover
    count = 0
    for c in range(COLS):
        if heights[g, c] < ROWS:
            count += 1
    k = rng_integers(rng, g, count)
    for c in range(COLS):
        if heights[g, c] < ROWS:
            if k == 0:
                return c
            k -= 1
    return -1


@njit(cache=True, nogil=True)
def _one_ply(
    g: int, me: int, boards: np.ndarray, heights: np.ndarray, rng: np.ndarray
) -> int:  # pragma: no cover - numba
    """Win if possible, else block the opponent's immediate win, else a random legal move."""
    for side in (me, 1 - me):
        for c in range(COLS):
            h = heights[g, c]
            if h < ROWS and has_won(boards[g, side] | _bit(c, h)):
                return c
    return _random_legal(g, heights, rng)


@njit(cache=True, nogil=True)
def _play(
    g: int, p: int, c: int, boards: np.ndarray, heights: np.ndarray
) -> bool:  # pragma: no cover
    """Drop player ``p``'s stone in column ``c``; return whether it wins."""
    boards[g, p] |= _bit(c, heights[g, c])
    heights[g, c] += 1
    return has_won(boards[g, p])


@njit(cache=True, nogil=True)
def _observe(
    g: int, row: int, p: int, turn: bool, boards: np.ndarray, heights: np.ndarray,
    obs: np.ndarray, action_masks: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    own = boards[g, p]
    other = boards[g, 1 - p]
    for r in range(ROWS):
        h = ROWS - 1 - r
        for c in range(COLS):
            b = _bit(c, h)
            obs[row, r * COLS + c] = 1.0 if own & b else 0.0
            obs[row, ROWS * COLS + r * COLS + c] = 1.0 if other & b else 0.0
    for c in range(COLS):
        legal = heights[g, c] < ROWS
        obs[row, 2 * ROWS * COLS + c] = 1.0 if legal else 0.0
        action_masks[row, c] = legal
    obs[row, OBS_SIZE - 1] = 1.0 if turn else 0.0


@njit(cache=True, nogil=True)
def _new_game(
    g: int, opponent: int, boards: np.ndarray, heights: np.ndarray, to_move: np.ndarray,
    starter: np.ndarray, obs: np.ndarray, action_masks: np.ndarray, masks: np.ndarray,
    rng: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    """Clear game ``g``, alternate the first mover, let a scripted opponent open, observe."""
    boards[g, 0] = 0
    boards[g, 1] = 0
    for c in range(COLS):
        heights[g, c] = 0
    starter[g] = 1 - starter[g]
    first = starter[g]  # player 0 = the agent (scripted mode) or row 2g (self-play)
    if opponent == 0:
        to_move[g] = first
        for p in range(2):
            row = 2 * g + p
            _observe(g, row, p, p == first, boards, heights, obs, action_masks)
            masks[row] = p == first
    else:
        if first == 1:
            c = _random_legal(g, heights, rng)  # both scripted opponents open at random
            _play(g, 1, c, boards, heights)
        to_move[g] = 0
        _observe(g, g, 0, True, boards, heights, obs, action_masks)
        masks[g] = True


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, boards: np.ndarray, heights: np.ndarray,
    to_move: np.ndarray, starter: np.ndarray, action_masks: np.ndarray, opponent: int,
) -> None:  # pragma: no cover - numba  # fmt: skip
    obs, masks, rng = io[OBSERVATIONS], io[MASKS], io[RNG]
    for g in range(lo, hi):
        starter[g] = 1  # so that the first game of every copy starts with player 0
        _new_game(g, opponent, boards, heights, to_move, starter, obs, action_masks, masks, rng)


@njit(cache=True, nogil=True)
def _full(g: int, heights: np.ndarray) -> bool:  # pragma: no cover - numba
    full = True
    for c in range(COLS):
        full = full and heights[g, c] >= ROWS
    return full


@njit(cache=True, nogil=True, inline="always")
def _finish_row(
    io: KernelIO, g: int, row: int, reward: float, win: bool, draw_: bool, illegal: bool
) -> None:  # pragma: no cover - numba
    io[REWARDS][row] = reward
    io[EPISODE_RETURN][row] += reward
    io[TERMINALS][row] = True
    stats = io[EPISODE_STATS]
    stats[g, 3] += 1.0 if win else 0.0
    stats[g, 4] += 1.0 if draw_ else 0.0
    stats[g, 5] += 1.0 if illegal else 0.0
    end_episode(io, g, row, row + 1)


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, boards: np.ndarray, heights: np.ndarray,
    to_move: np.ndarray, starter: np.ndarray, action_masks: np.ndarray, opponent: int,
    illegal_mode: int,
) -> None:  # pragma: no cover - numba  # fmt: skip
    actions, obs, masks, rng = io[ACTIONS], io[OBSERVATIONS], io[MASKS], io[RNG]
    rewards, terminals, truncations = io[REWARDS], io[TERMINALS], io[TRUNCATIONS]
    length = io[EPISODE_LENGTH]
    per = 1 if opponent else 2
    for g in range(lo, hi):
        p = to_move[g]
        row = g if opponent else 2 * g + p
        a = actions[row]
        for r in range(per * g, per * g + per):
            rewards[r] = 0.0
            terminals[r] = False
            truncations[r] = False
            length[r] += 1
        illegal = a < 0 or a >= COLS or heights[g, max(0, min(a, COLS - 1))] >= ROWS
        if illegal and illegal_mode == 1:
            a = _random_legal(g, heights, rng)
            illegal = False
        # outcome for player p: 1 win, -1 loss, 0 draw, 2 game goes on
        outcome = 2
        if illegal:
            outcome = -1
        elif _play(g, p, a, boards, heights):
            outcome = 1
        elif _full(g, heights):
            outcome = 0
        elif opponent:
            c = _random_legal(g, heights, rng) if opponent == 1 else _one_ply(
                g, 1, boards, heights, rng
            )  # fmt: skip
            if _play(g, 1, c, boards, heights):
                outcome = -1
            elif _full(g, heights):
                outcome = 0
        if outcome == 2:
            if opponent:
                _observe(g, g, 0, True, boards, heights, obs, action_masks)
            else:
                to_move[g] = 1 - p
                for q in range(2):
                    r = 2 * g + q
                    _observe(g, r, q, q != p, boards, heights, obs, action_masks)
                    masks[r] = q != p
            continue
        # the game ended: observe the final board, record, start the next game
        if opponent:
            _observe(g, g, 0, False, boards, heights, obs, action_masks)
            _finish_row(io, g, g, float(outcome), outcome == 1, outcome == 0, illegal)
        else:
            for q in range(2):
                r = 2 * g + q
                sign = 1.0 if q == p else -1.0
                _observe(g, r, q, False, boards, heights, obs, action_masks)
                _finish_row(
                    io, g, r, sign * outcome, sign * outcome > 0, outcome == 0, illegal and q == p
                )
        _new_game(g, opponent, boards, heights, to_move, starter, obs, action_masks, masks, rng)


class Connect4(NativeEnv):
    """``connect4-v1``: Connect Four for self-play (two rows per game) or against a script.

    ``action_masks`` (bool ``[A, 7]``) holds each row's legal columns, also in the
    observation at ``[84:91]``; ``masks`` flags the rows whose turn it is.

    Args:
        num_envs: Number of games (rows = 2 per game in self-play, 1 with an opponent).
        threads: Threads stepping disjoint ranges of games.
        seed: Seed of the first reset (game ``g`` uses ``seed + g``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        opponent: ``None`` (self-play), ``"random"`` or ``"one_ply"`` (scripted opponent).
        illegal_move: ``"lose"`` (an illegal move loses) or ``"random"`` (a random legal move
            is played instead).
    """

    check_actions = False  # checks its own actions (live rows only, its own messages)

    action_masks: np.ndarray
    """Legal columns of every row (bool ``[A, 7]``, the ``action_masks`` extra field)."""
    score_keys = ("win", "draw", "illegal")
    solve_threshold = 0.9  # win rate against opponent="one_ply"

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        opponent: str | None = None,
        illegal_move: str = "lose",
    ) -> None:
        if opponent not in _OPPONENTS:
            raise APIUsageError(
                f"opponent must be None (self-play), 'random' or 'one_ply', got {opponent!r}"
            )
        if illegal_move not in _ILLEGAL:
            raise APIUsageError(f"illegal_move must be 'lose' or 'random', got {illegal_move!r}")
        self.opponent = opponent
        self.illegal_move = illegal_move
        self._opponent_code = _OPPONENTS[opponent]
        self._illegal_code = _ILLEGAL[illegal_move]
        super().__init__(
            num_envs,
            spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float32),
            spaces.Discrete(COLS),
            agents_per_env=1 if opponent else 2,
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
            extra_fields=(action_masks_field(COLS),),
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """Bitboards ``boards`` uint64 ``[G, 2]``, column ``heights`` ``[G, 7]``, ``to_move``
        and ``starter`` ``[G]``, and ``action_masks``: the declared extra field's buffer
        (``self.extras["action_masks"]``, bool ``[A, 7]``), kept in the state so that
        :meth:`get_state` saves it and the kernels write it through ``self.state``."""
        return {
            "boards": np.zeros((num_envs, 2), dtype=np.uint64),
            "heights": np.zeros((num_envs, COLS), dtype=np.int64),
            "to_move": np.zeros(num_envs, dtype=np.int64),
            "starter": np.zeros(num_envs, dtype=np.int64),
            "action_masks": self.extras["action_masks"],
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Start a fresh game in copies ``[lo, hi)``."""
        s = self.state
        _reset(
            lo, hi, self.io, s["boards"], s["heights"], s["to_move"], s["starter"],
            s["action_masks"], self._opponent_code,
        )  # fmt: skip

    def step_envs(self, lo: int, hi: int) -> None:
        """Step games ``[lo, hi)``."""
        s = self.state
        _step(
            lo, hi, self.io, s["boards"], s["heights"], s["to_move"], s["starter"],
            s["action_masks"], self._opponent_code, self._illegal_code,
        )  # fmt: skip

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore a state from :meth:`get_state`, including whose turn it is (``masks``)."""
        super().set_state(state)
        if self.opponent:
            self.masks[:] = True
        else:
            turns = self.masks.reshape(-1, 2)
            turns[:] = False
            turns[np.arange(self.num_copies), self.state["to_move"]] = True

    def board(self, game: int = 0) -> np.ndarray:
        """Game ``game``'s board as int8 ``[6, 7]`` (top row first): 0 empty, 1 and 2 players.

        In self-play player 1 is row ``2 game``; with an opponent player 1 is the agent.
        """
        cells = np.zeros((ROWS, COLS), dtype=np.int8)
        for p in range(2):
            bits = int(self.state["boards"][game, p])
            for c in range(COLS):
                for h in range(ROWS):
                    if bits >> (7 * c + h) & 1:
                        cells[ROWS - 1 - h, c] = p + 1
        return cells

    def render(self, row: int = 0) -> np.ndarray:
        """The board of the game holding row ``row`` (red = player 1, yellow = player 2)."""
        palette = np.array([[30, 60, 160], [220, 40, 40], [240, 210, 40]], dtype=np.uint8)
        return draw.grid(self.board(row // self.agents_per_env), palette, cell_size=16)
