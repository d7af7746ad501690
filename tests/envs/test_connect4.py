"""connect4-v1: win detection, legal masks, the self-play turn scheme, scripted opponents."""

from __future__ import annotations

import numpy as np
import pytest

from fugu.envs.connect4 import COLS, ROWS, Connect4, _one_ply, has_won


def _bitboards(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bitboards [2] and heights [7] of a [6, 7] grid (top row first; 1, 2 = players)."""
    boards = [0, 0]
    heights = np.zeros(COLS, dtype=np.int64)
    for c in range(COLS):
        for h in range(ROWS):
            v = cells[ROWS - 1 - h, c]
            if v:
                boards[v - 1] |= 1 << (7 * c + h)
                heights[c] = h + 1
    return np.array(boards, dtype=np.uint64), heights


def _reference_win(cells: np.ndarray, player: int) -> bool:
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                line = [(r + k * dr, c + k * dc) for k in range(4)]
                if all(0 <= y < ROWS and 0 <= x < COLS and cells[y, x] == player for y, x in line):
                    return True
    return False


def _load(env: Connect4, game: int, cells: np.ndarray, to_move: int = 0) -> None:
    boards, heights = _bitboards(np.asarray(cells))
    env.state["boards"][game] = boards
    env.state["heights"][game] = heights
    env.state["to_move"][game] = to_move


@pytest.mark.parametrize(
    "line",
    [
        [(5, 0), (5, 1), (5, 2), (5, 3)],  # row
        [(2, 6), (3, 6), (4, 6), (5, 6)],  # column
        [(5, 0), (4, 1), (3, 2), (2, 3)],  # rising diagonal
        [(2, 2), (3, 3), (4, 4), (5, 5)],  # falling diagonal
        [(0, 3), (1, 4), (2, 5), (3, 6)],  # diagonal touching the top and right edges
    ],
)
def test_has_won_rows_columns_diagonals(line: list[tuple[int, int]]) -> None:
    cells = np.zeros((ROWS, COLS), dtype=np.int64)
    for r, c in line:
        cells[r, c] = 1
    assert has_won(_bitboards(cells)[0][0])
    cells[line[-1]] = 0
    assert not has_won(_bitboards(cells)[0][0])


def test_has_won_matches_reference_on_random_boards() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        cells = rng.choice([0, 1, 2], size=(ROWS, COLS), p=[0.4, 0.3, 0.3])
        boards = _bitboards(cells)[0]  # gravity does not matter to win detection
        for p in (1, 2):
            assert has_won(boards[p - 1]) == _reference_win(cells, p)


def test_self_play_turns_masks_and_rewards() -> None:
    env = Connect4(num_envs=1, seed=0)
    obs, _ = env.reset()
    assert env.masks.tolist() == [True, False] and obs[:, -1].tolist() == [1.0, 0.0]
    # row 0 plays column 0 four times, row 1 column 1 three times: row 0 wins vertically
    for t in range(7):
        mover = t % 2
        actions = np.array([0, 1], dtype=np.int32) if mover == 0 else np.array([5, 1], np.int32)
        obs, rewards, terminals, truncations, _ = env.step(actions)
        if t < 6:
            assert env.masks.tolist() == [mover == 1, mover == 0]
            assert not terminals.any() and not rewards.any()
    assert rewards.tolist() == [1.0, -1.0] and terminals.tolist() == [True, True]
    final = env.final_observations
    assert final[0, 3 * 7 + 0] == 1 and final[1, 42 + 3 * 7 + 0] == 1  # own vs opponent planes
    assert not truncations.any()
    # the next game starts with the other row moving first, on an empty board
    assert env.masks.tolist() == [False, True] and not obs[:, :84].any()
    (info,) = env.flush_infos()
    assert info["num_episodes"] == 2 and info["win"] == 0.5 and info["episode_length"] == 7.0


def test_legal_masks_and_illegal_moves() -> None:
    env = Connect4(num_envs=1, seed=0)
    env.reset()
    cells = np.zeros((ROWS, COLS), dtype=np.int64)
    cells[:, 2] = [1, 2, 1, 2, 1, 2][::-1]
    cells[5, 0] = 2
    _load(env, 0, cells)
    env.step(np.array([4, 0], dtype=np.int32))  # a legal move refreshes the observations
    legal = [True, True, False, True, True, True, True]
    assert env.action_masks.tolist() == [legal, legal]
    assert env.observations[:, 84:91].tolist() == [[float(x) for x in legal]] * 2
    rewards, terminals = env.step(np.array([0, 2], dtype=np.int32))[1:3]  # row 1: full column
    assert rewards.tolist() == [1.0, -1.0] and terminals.all()
    assert env.flush_infos()[0]["illegal"] == 0.5


def test_illegal_move_random_plays_a_legal_column() -> None:
    env = Connect4(num_envs=1, seed=0, illegal_move="random")
    env.reset()
    _, rewards, terminals, _, _ = env.step(np.array([9, 0], dtype=np.int32))
    assert not terminals.any() and not rewards.any()
    assert int(env.state["heights"][0].sum()) == 1


def test_one_ply_takes_wins_and_blocks() -> None:
    cells = np.zeros((ROWS, COLS), dtype=np.int64)
    cells[5, 1:4] = 2  # player 2 (index 1) threatens columns 0 and 4
    cells[5, 6] = 1
    cells[4, 6] = 1
    cells[3, 6] = 1  # player 1 (index 0) threatens column 6
    boards, heights = _bitboards(cells)
    boards, heights = boards[None], heights[None]
    state = np.array([12345], dtype=np.uint64)
    for _ in range(20):  # a win beats a block
        assert _one_ply(0, 0, boards, heights, state) == 6
        assert _one_ply(0, 1, boards, heights, state) in (0, 4)
    cells[3, 6] = 0
    boards, heights = _bitboards(cells)
    for _ in range(20):  # no win for player 1: block one of player 2's threats
        assert _one_ply(0, 0, boards[None], heights[None], state) in (0, 4)


def test_one_ply_opponent_punishes_and_blocks() -> None:
    env = Connect4(num_envs=1, seed=0, opponent="one_ply")
    env.reset()
    assert env.num_agents == 1 and env.masks.tolist() == [True]
    cells = np.zeros((ROWS, COLS), dtype=np.int64)
    cells[5, 0:3] = 2  # the opponent threatens column 3
    cells[5, 5:7] = 1
    _load(env, 0, cells)
    rewards, terminals = env.step(np.array([5], dtype=np.int32))[1:3]  # ignore the threat
    assert rewards.tolist() == [-1.0] and terminals.tolist() == [True]
    # now the agent threatens and the opponent must block
    env.reset()
    cells = np.zeros((ROWS, COLS), dtype=np.int64)
    cells[5, 0:2] = 1
    cells[4, 0:1] = 2
    _load(env, 0, cells)
    rewards, terminals = env.step(np.array([2], dtype=np.int32))[1:3]  # three in a row
    assert not terminals.any()
    assert env.board(0)[5, 3] == 2  # blocked
    own = env.observations[0, :42].reshape(ROWS, COLS)
    assert own[5, :3].tolist() == [1.0, 1.0, 1.0]


def test_random_opponent_games_end_and_agent_sometimes_moves_second() -> None:
    env = Connect4(num_envs=32, seed=1, opponent="random")
    env.reset()
    stones = env.state["heights"].sum(axis=1)
    assert set(stones.tolist()) == {0}  # first games: the agent opens
    rng = np.random.default_rng(0)
    episodes = 0
    second = 0
    for _ in range(200):
        env.step(rng.integers(0, 7, 32).astype(np.int32))
        episodes += int(env.terminals.sum())
        second += int((env.terminals & (env.state["heights"].sum(axis=1) == 1)).sum())
    assert episodes > 50 and second > 0
    assert env.masks.all()
