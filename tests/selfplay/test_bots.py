"""The scripted connect4 bots: legal moves, the one-ply rule, alpha-beta = plain minimax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.envs.connect4 import Connect4
from fugu.selfplay.bots import AlphaBetaBot, OnePlyBot, RandomBot, _evaluate, _negamax, make_bot

WIN = 10_000.0


def _won(b: int) -> bool:
    for s in (1, 7, 6, 8):
        m = b & (b >> s)
        if m & (m >> (2 * s)):
            return True
    return False


def _drop(mask: int, c: int) -> int:
    col = 0x3F << (7 * c)
    return (mask + (1 << (7 * c))) & col


def _minimax(me: int, other: int, depth: int) -> float:
    """Plain negamax without pruning, the slow reference."""
    mask = me | other
    moves = [b for b in (_drop(mask, c) for c in range(7)) if b]
    for b in moves:
        if _won(me | b):
            return WIN + depth
    if not moves:
        return 0.0
    if depth <= 0:
        return float(_evaluate(np.uint64(me), np.uint64(other)))
    return max(-_minimax(other, me | b, depth - 1) for b in moves)


def _random_position(rng: np.random.Generator, plies: int) -> tuple[int, int]:
    boards = [0, 0]
    for ply in range(plies):
        mask = boards[0] | boards[1]
        moves = [b for b in (_drop(mask, c) for c in range(7)) if b]
        boards[ply % 2] |= moves[rng.integers(len(moves))]
        if _won(boards[ply % 2]):
            return _random_position(rng, plies)
    return boards[plies % 2], boards[1 - plies % 2]  # (side to move, the other)


def test_alpha_beta_values_equal_plain_minimax():
    rng = np.random.default_rng(0)
    for _ in range(30):
        me, other = _random_position(rng, int(rng.integers(4, 20)))
        for depth in (1, 3):
            got = _negamax(np.uint64(me), np.uint64(other), depth, -4 * WIN, 4 * WIN)
            assert got == _minimax(me, other, depth)


def _play(env: Connect4, bots) -> np.ndarray:
    obs, _ = env.reset(seed=0)
    actions = np.zeros(env.num_agents, dtype=env.actions.dtype)
    rows = [np.arange(0, env.num_agents, 2), np.arange(1, env.num_agents, 2)]
    for _ in range(42):
        for bot, r in zip(bots, rows):
            acted = bot.act(torch.from_numpy(obs[r]), None, {}).actions.numpy()
            turn = obs[r, 91] > 0.5
            legal = obs[r, 84 + acted] > 0.5
            assert legal[turn].all()  # bots never play an illegal move
            actions[r] = acted
        obs, *_ = env.step(actions)
    return obs


@pytest.mark.parametrize("spec", ["random", "one_ply", "alphabeta1", "alphabeta3"])
def test_bots_play_legal_moves_on_their_turn(spec):
    env = Connect4(num_envs=8, seed=0)
    _play(env, [make_bot(spec, seed=1), make_bot(spec, seed=2)])
    env.close()


def test_one_ply_wins_then_blocks_and_alpha_beta_sees_a_double_threat():
    def obs_of(own: list[tuple[int, int]], other: list[tuple[int, int]]) -> torch.Tensor:
        obs = np.zeros((1, 92), np.float32)
        heights = [0] * 7
        for c, h in own:
            obs[0, (5 - h) * 7 + c] = 1
            heights[c] = max(heights[c], h + 1)
        for c, h in other:
            obs[0, 42 + (5 - h) * 7 + c] = 1
            heights[c] = max(heights[c], h + 1)
        obs[0, 84:91] = [h < 6 for h in heights]
        obs[0, 91] = 1
        return torch.from_numpy(obs)

    # own three in column 0: win there; the opponent's three in column 6: block
    win = obs_of([(0, 0), (0, 1), (0, 2)], [(6, 0), (6, 1), (6, 2)])
    assert OnePlyBot(0).act(win, None, {}).actions.item() == 0
    block = obs_of([(0, 0), (1, 0)], [(6, 0), (6, 1), (6, 2)])
    assert OnePlyBot(0).act(block, None, {}).actions.item() == 6
    # own stones in columns 2 and 3 (bottom), open on both sides: column 1 or 4 makes an open
    # three that wins two plies later, whatever the opponent does (depth 3 sees it)
    double = obs_of([(2, 0), (3, 0)], [(2, 1), (3, 1)])
    moves = {AlphaBetaBot(3, seed=s).act(double, None, {}).actions.item() for s in range(8)}
    assert moves <= {1, 4}
    assert RandomBot(0).act(double, None, {}).actions.shape == (1,)


def test_make_bot_rejects_unknown_names():
    from fugu.core.errors import APIUsageError

    with pytest.raises(APIUsageError, match="alphabetaN"):
        make_bot("minimax")
