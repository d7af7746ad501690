"""``fugu bench zoo``: fugu PPO vs SB3 PPO (rl-zoo3 settings) on the classic control suite."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu bench zoo``."""
    parser.description = (
        "Train fugu PPO (its default preset, untuned) and Stable-Baselines3 PPO (rl-zoo3's "
        "hyperparameters, VecNormalize where the zoo uses it) on Gymnasium's classic control "
        "tasks, seeds interleaved. One JSON line per run (steps and wall-clock to the "
        "threshold, final return of the last 100 training episodes, greedy evaluation "
        "return), then a summary per task with medians and the SB3/fugu wall-clock ratio."
    )
    parser.add_argument(
        "--tasks",
        default="CartPole-v1,Acrobot-v1,Pendulum-v1",
        help="comma-separated tasks (CartPole-v1, Acrobot-v1, MountainCar-v0, "
        "MountainCarContinuous-v0, Pendulum-v1, LunarLander-v3)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per implementation (3)")
    parser.add_argument("--impls", default="fugu,sb3", help="comma-separated: fugu, sb3")
    parser.add_argument(
        "--time-budget", type=float, default=600.0, help="seconds cap of one run (600)"
    )
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes (20)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, printing JSON lines as runs finish."""
    import json
    import sys

    from fugu.core.errors import FuguError
    from fugu.train.zoo import ZooConfig, run_zoo

    try:
        config = ZooConfig(
            tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
            seeds=args.seeds,
            impls=tuple(s.strip() for s in args.impls.split(",") if s.strip()),
            time_budget_s=args.time_budget,
            eval_episodes=args.eval_episodes,
        )
        for row in run_zoo(config):
            print(json.dumps(row), flush=True)
    except FuguError as error:
        print(f"fugu bench zoo: error: {error}", file=sys.stderr)
        return 2
    return 0
