"""``fugu verify CHECKPOINT --property FILE``: prove or refute properties of a policy."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu verify``."""
    parser.add_argument("checkpoint", help="a checkpoint directory, or a run dir (its latest)")
    parser.add_argument(
        "--property",
        required=True,
        metavar="FILE",
        help="a TOML property file ([[property]] tables: never_action, output_bounds, monotonic)",
    )
    parser.add_argument(
        "--engine",
        action="append",
        choices=("ibp", "z3", "marabou"),
        help="engine(s) to run, repeatable (default: all three)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per property and exact engine"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per result")


def _time(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def run(args: argparse.Namespace) -> int:
    """Verify; exit 0 when nothing is violated, 1 when a property is, 2 on errors."""
    import json
    import sys

    from fugu.core.errors import FuguError
    from fugu.verify import load_network, verify

    engines = args.engine or ["ibp", "z3", "marabou"]
    try:
        net, env_id = load_network(args.checkpoint)
        results = verify(net, args.property, engines, args.timeout)
    except FuguError as error:
        print(f"fugu verify: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        for result in results:
            print(json.dumps(result.to_dict()))
    else:
        print(f"policy of {env_id}: {net.num_inputs} inputs, {net.num_outputs} outputs, "
              f"{len(net.layers) - 1} hidden layers")  # fmt: skip
        for result in results:
            line = f"{result.name:<32} {result.kind:<14} {result.engine:<8} "
            line += f"{result.status.upper():<9} {_time(result.seconds):>10}"
            if result.status == "violated" and result.counterexample is not None:
                points = "; ".join(
                    "[" + ", ".join(f"{v:.4g}" for v in p) + "]" for p in result.counterexample
                )
                line += f"  counterexample {points}"
            elif result.status == "unknown":
                line += f"  ({result.detail})"
            print(line)
    return 1 if any(r.status == "violated" for r in results) else 0
