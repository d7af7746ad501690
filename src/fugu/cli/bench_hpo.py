"""``fugu bench hpo``: Protein against Random, Sobol and Optuna TPE on cost-aware problems.

Prints one JSON line per (problem, method): medians over seeds of the score-cost front's
hypervolume and of the best score under a cost cap; then the latency of one Protein suggestion
with 200 observations. ``--gp`` adds the GP backend comparison (fugu's GP against gpytorch),
``--cartpole`` a real 20-trial sweep on cartpole-v1 and the best config against the preset.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu bench hpo``."""
    from fugu.hpo.methods import METHODS

    parser.add_argument(
        "--problems", default="branin,hartmann6", help="synthetic problems (branin,hartmann6)"
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"searchers ({','.join(METHODS)})"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per method (5)")
    parser.add_argument("--trials", type=int, default=60, help="runs per search (60)")
    parser.add_argument(
        "--no-latency", action="store_true", help="skip the suggestion latency measurement"
    )
    parser.add_argument("--gp", action="store_true", help="also compare fugu's GP with gpytorch")
    parser.add_argument(
        "--cartpole", action="store_true", help="also run a real sweep on cartpole-v1 (slow)"
    )
    parser.add_argument("--cartpole-runs", type=int, default=20, help="trials of --cartpole (20)")
    parser.add_argument(
        "--cartpole-cost",
        choices=("seconds", "steps"),
        default="seconds",
        help="cost axis of --cartpole's sweep (seconds)",
    )
    parser.add_argument(
        "--sweep-dir", default="runs/bench-hpo-cartpole", help="directory of --cartpole's sweep"
    )


def run(args: argparse.Namespace) -> int:
    """Run the measurements, printing one JSON line each."""
    import json

    import torch

    from fugu.hpo import benchmark

    torch.set_num_threads(1)

    def emit(record: dict[str, object]) -> None:
        print(json.dumps(record), flush=True)

    problems = [p for p in args.problems.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    for record in benchmark.run_benchmark(
        problems, methods, num_seeds=args.seeds, num_trials=args.trials
    ):
        emit(record)
    if not args.no_latency:
        emit(benchmark.suggest_latency(200))
    if args.gp:
        for record in benchmark.compare_gp_backends():
            emit(record)
    if args.cartpole:
        records = benchmark.cartpole_sweep(
            args.sweep_dir, args.cartpole_runs, cost=args.cartpole_cost
        )
        for record in records:
            emit(record)
    return 0
