"""The zoo benchmark: fugu PPO vs SB3 PPO (rl-zoo3 settings) on classic control, same run.

Usage: ``python benchmarks/zoo.py [--tasks CartPole-v1,Acrobot-v1] [--seeds 3]`` (the same as
``fugu bench zoo``).
"""

from __future__ import annotations

import argparse
import sys

from fugu.cli import bench_zoo


def main() -> int:
    parser = argparse.ArgumentParser()
    bench_zoo.add_arguments(parser)
    return bench_zoo.run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
