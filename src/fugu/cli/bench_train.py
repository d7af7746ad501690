"""``fugu bench train``: fugu PPO vs Stable-Baselines3 PPO on CartPole, same run, many seeds."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu bench train``."""
    parser.description = (
        "Train fugu PPO (native cartpole-v1, its preset) and Stable-Baselines3 PPO (Gymnasium "
        "CartPole-v1, rl-zoo3 hyperparameters) over several seeds, interleaved. Prints one JSON "
        "line per run (impl, seed, sps, solved, time_to_solve_s, steps_to_solve, ...) and a "
        "summary line with medians and ratio_sps_vs_sb3."
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per implementation (5)")
    parser.add_argument("--impls", default="fugu,sb3", help="comma-separated: fugu, sb3")
    parser.add_argument(
        "--fugu-timesteps", type=int, help="fugu step budget (the preset's total_timesteps)"
    )
    parser.add_argument(
        "--sb3-timesteps", type=int, default=100_000, help="SB3 step budget (100000, rl-zoo3)"
    )
    parser.add_argument(
        "--time-budget", type=float, default=600.0, help="seconds cap of one SB3 run (600)"
    )
    parser.add_argument(
        "--no-stop-on-solve", action="store_true", help="run the whole budget after solving"
    )
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override fugu's preset, e.g. --set ppo.learning_rate=1e-3 (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, printing JSON lines as runs finish."""
    import json
    import sys

    from fugu.core.errors import FuguError
    from fugu.train.benchmark import TrainBenchConfig, run_train_benchmark

    try:
        overrides = {}
        for item in args.set:
            key, eq, value = item.partition("=")
            if not eq:
                raise FuguError(f"--set wants KEY=VALUE, got {item!r}")
            overrides[key.strip()] = value.strip()
        config = TrainBenchConfig(
            seeds=args.seeds,
            impls=tuple(s.strip() for s in args.impls.split(",") if s.strip()),
            fugu_overrides=overrides,
            fugu_timesteps=args.fugu_timesteps,
            sb3_timesteps=args.sb3_timesteps,
            time_budget_s=args.time_budget,
            stop_on_solve=not args.no_stop_on_solve,
            torch_threads=args.torch_threads,
        )
        for row in run_train_benchmark(config):
            print(json.dumps(row), flush=True)
    except FuguError as error:
        print(f"fugu bench train: error: {error}", file=sys.stderr)
        return 2
    return 0
