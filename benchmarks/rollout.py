"""Rollout speed of fugu's trainer (env steps + policy + sampling, no update): one JSON line each.

Usage: ``python benchmarks/rollout.py [--num-envs 512 4096] [--hidden-size 32]``
(the same as ``fugu bench rollout``).
"""

from __future__ import annotations

import argparse
import sys

from fugu.cli import bench_rollout


def main() -> int:
    parser = argparse.ArgumentParser()
    bench_rollout.add_arguments(parser)
    return bench_rollout.run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
