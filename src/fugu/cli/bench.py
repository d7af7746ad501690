"""``fugu bench WHAT``: speed measurements, each beside its peers in the same run.

Each benchmark lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help). Add a line here to add a benchmark.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "vector": ("fugu.cli.bench_vector", "vectorization backends vs Gymnasium's vector envs"),
    "env": ("fugu.cli.bench_env", "native envs' steps/s vs Gymnasium vector CartPole and EnvPool"),
    "hpo": ("fugu.cli.bench_hpo", "Protein vs Random/Sobol/Optuna TPE on cost-aware problems"),
    "train": ("fugu.cli.bench_train", "fugu PPO vs Stable-Baselines3 PPO on CartPole, many seeds"),
    "rollout": ("fugu.cli.bench_rollout", "the trainer's collection alone (env + policy), steps/s"),
    "zoo": ("fugu.cli.bench_zoo", "fugu PPO vs SB3 PPO (rl-zoo3 settings) on classic control"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one sub-command per benchmark."""
    sub = parser.add_subparsers(dest="benchmark", metavar="WHAT", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(command)
        command.set_defaults(_bench_module=module)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark."""
    return int(importlib.import_module(args._bench_module).run(args))
