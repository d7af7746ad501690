"""``fugu play connect4-v1 --checkpoint X``: a person plays connect4 against an agent.

The board is drawn in the terminal (``X`` you, ``O`` the agent); type a column number 1-7
and Enter on your turn (``q`` quits). ``--checkpoint`` takes a checkpoint or a run dir, or a
bot (``--checkpoint one_ply``, ``alphabeta4``). You open the first game with ``--first``
(default: the agent opens the first game), and seats alternate from game to game.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu play``."""
    parser.add_argument("env", help="connect4-v1")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH|BOT",
        help="a checkpoint or run dir, or a bot (random, one_ply, alphabetaN)",
    )
    parser.add_argument("--games", type=int, default=1, help="games to play (1)")
    parser.add_argument("--first", action="store_true", help="you open the first game")
    parser.add_argument("--stochastic", action="store_true", help="the agent samples its moves")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")


def draw_board(board: Any, human: int) -> str:
    """The board as text (``X`` the person, ``O`` the agent), column numbers below.

    Example:
        >>> import numpy as np
        >>> b = np.zeros((6, 7), np.int8); b[5, 3] = 1; b[5, 4] = 2
        >>> print(draw_board(b, human=1).splitlines()[-2])
        | . . . X O . . |
    """
    symbols = {0: ".", human: "X", 3 - human: "O"}
    lines = ["| " + " ".join(symbols[int(v)] for v in row) + " |" for row in board]
    lines.append("  " + " ".join(str(c + 1) for c in range(board.shape[1])))
    return "\n".join(lines)


def _ask(legal: list[int], stdin: TextIO, out: TextIO) -> int | None:
    while True:
        out.write(f"your move ({', '.join(str(c + 1) for c in legal)}; q quits): ")
        out.flush()
        line = stdin.readline()
        if not line or line.strip().lower() in ("q", "quit", "exit"):
            return None
        text = line.strip()
        if text.isdigit() and int(text) - 1 in legal:
            return int(text) - 1
        out.write(f"not a legal column: {text!r}\n")


def run(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Play ``--games`` games in the terminal; print the tally."""
    import numpy as np
    import torch

    from fugu.core.errors import FuguError
    from fugu.envs.connect4 import Connect4
    from fugu.selfplay.match import load_actor

    stdin = stdin or sys.stdin
    out = out or sys.stdout
    if args.env != "connect4-v1":
        print("fugu play: error: only connect4-v1 can be played in the terminal", file=sys.stderr)
        return 2
    try:
        agent = load_actor(args.checkpoint, args.env, args.seed)
    except FuguError as error:
        print(f"fugu play: error: {error}", file=sys.stderr)
        return 2
    env = Connect4(num_envs=1, seed=args.seed)
    tally = {"you": 0, "agent": 0, "draw": 0}
    try:
        obs, _ = env.reset(seed=args.seed)
        # row 0 opens the first game; the person takes row 0 with --first
        human = 0 if args.first else 1
        state = agent.initial_state(1)
        for game in range(args.games):
            out.write(
                f"\ngame {game + 1}: you are X, {'you open' if obs[human, 91] else 'O opens'}\n"
            )
            while True:
                turn = 0 if obs[0, 91] > 0.5 else 1
                actions = np.zeros(2, dtype=env.actions.dtype)
                if turn == human:
                    out.write(draw_board(env.board(0), human + 1) + "\n")
                    legal = [c for c in range(7) if obs[human, 84 + c] > 0.5]
                    move = _ask(legal, stdin, out)
                    if move is None:
                        out.write("bye\n")
                        return 0
                    actions[human] = move
                else:
                    extras = {
                        "action_masks": torch.from_numpy(
                            env.action_masks[1 - human : 2 - human].copy()
                        )
                    }
                    acted = agent.act(
                        torch.from_numpy(obs[1 - human : 2 - human].copy()),
                        state,
                        extras,
                        not args.stochastic,
                    )
                    state = acted.state
                    actions[1 - human] = int(acted.actions[0])
                    out.write(f"O plays {int(actions[1 - human]) + 1}\n")
                board_before = env.board(0).copy()
                mover = turn
                col = int(actions[mover])
                obs, rewards, terminals, _, _ = env.step(actions)
                if terminals[0]:
                    final = board_before
                    height = int((final[:, col] != 0).sum())
                    final[5 - height, col] = mover + 1
                    out.write(draw_board(final, human + 1) + "\n")
                    r = rewards[human]
                    winner = "you" if r > 0 else ("agent" if r < 0 else "draw")
                    tally[winner] += 1
                    out.write(
                        {"you": "you win!", "agent": "the agent wins", "draw": "a draw"}[winner]
                        + "\n"
                    )
                    state = agent.reset_state(state, torch.ones(1, dtype=torch.bool))
                    break
    finally:
        env.close()
    out.write(f"\nyou {tally['you']}, agent {tally['agent']}, draws {tally['draw']}\n")
    return 0
