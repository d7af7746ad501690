"""``fugu match ENV A B``: two agents head to head, a win/draw/loss table with Wilson intervals.

``A`` and ``B`` are checkpoints (a checkpoint directory or a run dir: its latest valid
checkpoint) or bots (``random``, ``one_ply``, ``alphabetaN``). Games are split evenly between
the seats and the table shows each seat and both. ``--round-robin RUN_DIR`` instead plays
every pair of the snapshots of a self-play run's pool (``--every K`` keeps every K-th) and of
any ``--bots``, and prints the Elo ratings fitted to all the results.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu match``."""
    parser.add_argument("env", help="a two-player env in self-play mode, e.g. connect4-v1")
    parser.add_argument("a", nargs="?", help="checkpoint or run dir, or a bot: random, "
                        "one_ply, alphabetaN")  # fmt: skip
    parser.add_argument("b", nargs="?", help="its opponent (the same kinds)")
    parser.add_argument("--games", type=int, default=400, help="games per pairing (400)")
    parser.add_argument("--num-envs", type=int, default=100, help="games played at once (100)")
    parser.add_argument("--seed", type=int, default=0, help="env and bot seed (0)")
    parser.add_argument(
        "--greedy",
        action="store_true",
        help="agents take their policy's mode (default: they sample, so games differ)",
    )
    parser.add_argument(
        "--round-robin", metavar="RUN_DIR", help="rate the pool snapshots of a self-play run"
    )
    parser.add_argument("--every", type=int, default=1, help="round robin: every K-th snapshot")
    parser.add_argument(
        "--bots", default="", help="round robin: bots to add, comma-separated (e.g. one_ply)"
    )
    parser.add_argument("--plot", metavar="PNG", help="round robin: plot Elo against steps")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Play the match (or the round robin) and print the table."""
    from fugu.core.errors import FuguError

    try:
        if args.round_robin:
            return _round_robin(args)
        if not args.a or not args.b:
            raise FuguError("give two agents A and B (or --round-robin RUN_DIR)")
        return _match(args)
    except FuguError as error:
        print(f"fugu match: error: {error}", file=sys.stderr)
        return 2


def _match(args: argparse.Namespace) -> int:
    from fugu.selfplay.match import load_actor, play_match

    a = load_actor(args.a, args.env, args.seed + 1)
    b = load_actor(args.b, args.env, args.seed + 2)
    result = play_match(
        a,
        b,
        args.games,
        env_id=args.env,
        num_envs=args.num_envs,
        seed=args.seed,
        deterministic=(args.greedy, args.greedy),
    )
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, **result.to_dict()}))
    else:
        print(result.table(_short(args.a), _short(args.b)))
    return 0


def _short(spec: str) -> str:
    from pathlib import Path

    path = Path(spec)
    return path.name if path.exists() else spec


def _round_robin(args: argparse.Namespace) -> int:
    from fugu.selfplay.bots import make_bot
    from fugu.selfplay.match import pool_actors, round_robin

    actors: dict[str, Any] = pool_actors(args.round_robin, args.env, args.every)
    for i, spec in enumerate(b for b in args.bots.split(",") if b):
        actors[f"bot:{spec}"] = make_bot(spec, args.seed + 100 + i)
    first = next(iter(actors))
    ratings, records = round_robin(
        actors,
        args.games,
        anchor=first,
        env_id=args.env,
        num_envs=args.num_envs,
        seed=args.seed,
        deterministic=(args.greedy, args.greedy),
    )
    snapshots = [n for n in actors if n.startswith("snap-")]
    values = [ratings[n] for n in snapshots]
    monotonic = all(x < y for x, y in itertools.pairwise(values))
    if args.plot:
        from fugu.selfplay.plots import plot_elo

        points = {n: (int(n.split("-")[1]), ratings[n]) for n in snapshots}
        history = [{"step": float(e), "selfplay/elo": r} for e, r in sorted(points.values())]
        plot_elo(history, args.plot)
    if args.json:
        print(json.dumps({"ratings": ratings, "records": records, "monotonic": monotonic}))
        return 0
    print(f"round robin of {len(actors)} players, {args.games} games per pair ({first} = 0):")
    print(f"{'player':<18}{'elo':>8}  {'score':>6}")
    for name in actors:
        games = score = 0.0
        for a, b, w, d, lost in records:
            if name in (a, b):
                n = w + d + lost
                games += n
                score += (w + 0.5 * d) if name == a else (lost + 0.5 * d)
        print(f"{name:<18}{ratings[name]:8.1f}  {score / max(games, 1):6.3f}")
    print(f"snapshot Elo rises monotonically: {'yes' if monotonic else 'no'}")
    return 0
