"""``fugu export CHECKPOINT --format onnx|numpy|python``: a policy out of fugu, parity-checked."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu export``."""
    parser.add_argument("checkpoint", help="a checkpoint directory, or a run dir (its latest)")
    parser.add_argument(
        "--format",
        choices=("onnx", "numpy", "python"),
        default="onnx",
        help="onnx (onnxruntime, TensorRT-style static shapes later), numpy (a .py needing "
        "only numpy) or python (a .py needing nothing; MicroPython-ready)",
    )
    parser.add_argument("--output", metavar="PATH", help="file to write (policy.<ext>)")
    parser.add_argument(
        "--samples", type=int, default=1000, help="random observations of the parity check"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON line")


def run(args: argparse.Namespace) -> int:
    """Export, check parity against torch, print the report."""
    import json
    import sys

    from fugu.core.errors import FuguError
    from fugu.export import export

    output = args.output or f"policy.{'onnx' if args.format == 'onnx' else 'py'}"
    try:
        result = export(args.checkpoint, args.format, output, num_samples=args.samples)
    except FuguError as error:
        print(f"fugu export: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(
            f"wrote {result.path} ({result.format}, {result.size_bytes:,} bytes); parity on "
            f"{result.num_observations} observations: max abs error {result.max_abs_error:.2e}, "
            f"action agreement {100 * result.action_agreement:.2f}%"
        )
    return 0
