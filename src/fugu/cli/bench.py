"""``fugu bench WHAT``: speed measurements, each beside its peers in the same run.

Each benchmark lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help). Add a line here to add a benchmark.
BENCHMARKS: dict[str, tuple[str, str]] = {}


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
