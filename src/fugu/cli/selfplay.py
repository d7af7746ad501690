"""``fugu selfplay ENV``: train by self-play against an Elo-rated pool of past selves and bots.

Takes every flag of ``fugu train`` (``--SECTION.KEY VALUE`` config overrides, ``--run-name``,
``--resume``, ``--epochs``...) plus ``--selfplay.KEY VALUE`` for the self-play settings
(:class:`fugu.selfplay.run.SelfPlayConfig`: ``--selfplay.sampling pfsp``,
``--selfplay.bots random,one_ply``, ``--selfplay.pool-size 16``...). Writes the pool and the
ratings under ``RUN_DIR/selfplay/``, ``selfplay/...`` metrics to every sink (TensorBoard
included) and the learner's Elo over time as ``RUN_DIR/selfplay/elo.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

_PREFIX = "--selfplay."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``fugu train``'s arguments (the self-play settings are ``--selfplay.KEY`` overrides)."""
    from fugu.cli.train import add_arguments as add_train_arguments

    add_train_arguments(parser)
    # Static text: building the parser must not import torch (fugu.selfplay does).
    parser.description = (
        "train by self-play: learner rows and pool opponents on one vec env, Elo ratings. "
        "--selfplay.KEY VALUE sets the fields of fugu.selfplay.run.SelfPlayConfig (pool-size, "
        "snapshot-interval, sampling, bots, ...; docs/selfplay.md lists them all)"
    )


def selfplay_config(overrides: list[str]) -> tuple[Any, list[str]]:
    """The :class:`~fugu.selfplay.run.SelfPlayConfig` of the ``--selfplay.*`` pairs of
    ``overrides``, and the other pairs.

    Example:
        >>> config, rest = selfplay_config(["--selfplay.pool-size", "4", "--ppo.ent-coef", "0"])
        >>> config.pool_size, rest
        (4, ['--ppo.ent-coef', '0'])
    """
    from fugu.selfplay.run import SelfPlayConfig
    from fugu.train.fields import field_types, from_dict

    values: dict[str, Any] = {}
    rest: list[str] = []
    for key, value in zip(overrides[0::2], overrides[1::2]):
        if key.startswith(_PREFIX):
            name = key[len(_PREFIX) :].replace("-", "_")
            if name == "bots" or field_types(SelfPlayConfig).get(name) == tuple[str, ...]:
                values[name] = tuple(v for v in value.split(",") if v)
            else:
                values[name] = value
        else:
            rest += [key, value]
    return from_dict(SelfPlayConfig, values, "selfplay"), rest


def _two_player(config: Any, overrides: list[str]) -> Any:
    """``config`` in the env's two-player mode: a preset's scripted ``opponent`` (the
    ``connect4-v1`` preset trains against ``one_ply`` for ``fugu train``) is dropped unless
    ``--env.kwargs`` itself asked for it (then :func:`train_selfplay` refuses it)."""
    from fugu.train.aliases import resolve_key

    kwargs = dict(config.env.kwargs)
    given = any(resolve_key(flag, config.algo) == "env.kwargs" for flag in overrides[0::2])
    if kwargs.get("opponent") is None or given:
        return config
    kwargs.pop("opponent")
    return config.with_overrides({"env.kwargs": kwargs})


def run(args: argparse.Namespace) -> int:
    """Train by self-play; print progress lines, the summary and the ratings."""
    import logging

    from fugu.cli.train import build_config
    from fugu.core.errors import FuguError
    from fugu.selfplay.plots import plot_elo
    from fugu.selfplay.run import train_selfplay

    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        sp_config, rest = selfplay_config(list(args.overrides))
        args.overrides = rest
        config = _two_player(build_config(args), rest)
    except FuguError as error:
        print(f"fugu selfplay: error: {error}", file=sys.stderr)
        return 2
    last = [0.0]

    def report(progress: Any) -> None:
        if args.quiet or time.monotonic() - last[0] < 10.0:
            return
        last[0] = time.monotonic()
        m = progress.metrics
        print(
            f"step {progress.global_step:>10,}  {m.get('perf/sps', 0):>8,.0f} steps/s  "
            f"elo {m.get('selfplay/elo', float('nan')):7.1f}  "
            f"score {m.get('selfplay/score', float('nan')):.3f}  "
            f"pool {m.get('selfplay/pool_size', 0):.0f}",
            file=sys.stderr,
        )

    try:
        summary, sp = train_selfplay(
            config,
            sp_config,
            run_dir=args.run_dir,
            run_name=args.run_name,
            root=args.root,
            quiet=True,
            on_progress=report,
            max_epochs=args.epochs,
        )
    except FuguError as error:
        print(f"fugu selfplay: error: {error}", file=sys.stderr)
        return 2
    if args.summary_json:
        import json
        from pathlib import Path

        path = Path(args.summary_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        result = {**summary.to_dict(), "elo": sp.ratings["learner"].rating}
        path.write_text(json.dumps(result) + "\n")
    png = None
    try:
        png = plot_elo(sp.history, sp.directory / "elo.png")
    except ImportError as error:
        print(f"(no Elo plot: {error})", file=sys.stderr)
    print(
        f"{summary.timesteps} steps in {summary.wall_s:.1f}s ({summary.sps:,.0f} steps/s); "
        f"learner Elo {sp.ratings['learner'].rating:.1f}, pool of {len(sp.pool.snapshots())}"
    )
    print("ratings:")
    for name, rating in sp.ratings.ranking()[:12]:
        print(f"  {name:<16} {rating.rating:8.1f}  ({rating.games} games)")
    print(f"run dir:     {summary.run_dir}")
    print(f"checkpoint:  {summary.checkpoint}")
    if png is not None:
        print(f"elo plot:    {png}")
    if summary.checkpoint:
        print(
            f"match:       fugu match {summary.env} {summary.checkpoint} one_ply --games 400\n"
            f"play:        fugu play {summary.env} --checkpoint {summary.checkpoint}"
        )
    return 0
