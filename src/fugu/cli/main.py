"""Entry point of the ``fugu`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs (``fugu --help``
stays fast).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Add a line here to add a subcommand.
COMMANDS: dict[str, tuple[str, str]] = {
    "envs": ("fugu.cli.envs", "list fugu's registered environments"),
    "algos": ("fugu.cli.algos", "list the registered algorithms (collection, action spaces)"),
    "bench": ("fugu.cli.bench", "measure speed against peers (vector, env, train, ...)"),
    "train": (
        "fugu.cli.train",
        "train an algorithm (PPO by default) on an env: live dashboard, checkpoints, TensorBoard",
    ),
    "eval": ("fugu.cli.eval", "evaluate a checkpoint: episode returns, gif/mp4 rendering"),
    "sweep": ("fugu.cli.sweep", "hyperparameter search over training runs (Protein, cost-aware)"),
    "export": (
        "fugu.cli.export",
        "export a policy: ONNX, numpy, pure Python, MicroPython or C (Cortex-M0+), parity-checked",
    ),
    "push": (
        "fugu.cli.push",
        "push a policy to the HuggingFace Hub: model card, safetensors, ONNX",
    ),
    "pull": ("fugu.cli.pull", "download a policy from the HuggingFace Hub (fugu.load reads it)"),
    "runs": ("fugu.cli.runs", "list training runs with their status, steps and returns"),
    "selfplay": ("fugu.cli.selfplay", "train by self-play against an Elo-rated pool and bots"),
    "match": ("fugu.cli.match", "two agents or bots head to head: W/D/L, Wilson intervals, Elo"),
    "play": ("fugu.cli.play", "play connect4 against a checkpoint or a bot in the terminal"),
    "serve": ("fugu.cli.serve", "serve a vec env over gRPC for remote rollouts"),
    "llm": ("fugu.cli.llm", "tiny language-model policies: SFT, GRPO/DAPO, reward models"),
    "collect": (
        "fugu.cli.collect",
        "record a trajectory dataset from checkpoints, a random policy or a noisy mixture",
    ),
    "plan": ("fugu.cli.plan", "model predictive control (CEM/RS/MPPI, true env or PETS), sweeps"),
    "verify": ("fugu.cli.verify", "prove or refute properties of a policy: IBP, z3, Marabou"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (imports each subcommand's module)."""
    parser = argparse.ArgumentParser(
        prog="fugu",
        description="fugu: fast reinforcement learning. Run 'fugu COMMAND --help' for details.",
    )
    parser.add_argument("--version", action="version", version=f"fugu {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def _version() -> str:
    from fugu import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fugu`` command line and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
