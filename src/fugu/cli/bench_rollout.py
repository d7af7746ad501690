"""``fugu bench rollout``: steps per second of the trainer's collection alone (no update)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu bench rollout``."""
    parser.description = (
        "Steps per second of fugu's rollout (native env steps + policy forward + sampling + "
        "storage, no PPO update), single-buffered and double-buffered. One JSON line each."
    )
    parser.add_argument("--env", default="cartpole-v1", help="fugu env id (cartpole-v1)")
    parser.add_argument(
        "--num-envs", type=int, nargs="+", default=[512, 4096], help="rows (512 4096)"
    )
    parser.add_argument("--num-steps", type=int, default=16, help="rollout horizon (16)")
    parser.add_argument("--hidden-size", type=int, default=32, help="MLP width (32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; median (5)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (1)")


def run(args: argparse.Namespace) -> int:
    """Measure and print one JSON line per (num_envs, double_buffer)."""
    from fugu.train.speed import measure_rollout_sps

    for num_envs in args.num_envs:
        for double_buffer in (False, True):
            result = measure_rollout_sps(
                args.env,
                num_envs,
                args.num_steps,
                args.hidden_size,
                double_buffer,
                torch_threads=args.torch_threads,
                repeats=args.repeats,
            )
            print(json.dumps({"benchmark": "rollout", **result.to_dict()}), flush=True)
    return 0
