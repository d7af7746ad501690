"""The C export of a 2x64 tanh MLP (CartPole-sized) on Cortex-M0+: flash, static RAM and
instructions per inference (QEMU, ``-icount``), float32 against int8, with the parity of each
against the float reference on 1000 observations. One JSON line per variant.

Usage: ``python benchmarks/export_c.py`` (needs gcc, gcc-arm-none-eabi and qemu-system-arm:
``make system-deps``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from fugu.export.cbuild import (
    HostPolicy,
    build_firmware,
    build_host_library,
    firmware_size,
    instructions_per_inference,
    missing_tools,
    run_firmware,
)
from fugu.export.ccode import c_source, quantize
from fugu.export.graph import act, actor_graph, params
from fugu.models import PolicyConfig, make_policy


def main() -> int:
    missing = missing_tools("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
    if missing:
        print(json.dumps({"benchmark": "export-c", "skipped": f"install {' '.join(missing)}"}))
        return 0
    torch.manual_seed(0)
    policy = make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), PolicyConfig(hidden_size=64))
    graph = actor_graph(policy)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (1000, 4)).astype(np.float32)
    want_params, want_actions = params(graph, obs), act(graph, obs)
    variants = {"float32": None, "int8": quantize(graph, rng.uniform(-1, 1, (1000, 4)))}
    with tempfile.TemporaryDirectory() as root:
        for name, quant in variants.items():
            source, build = c_source(graph, quant), Path(root) / name
            host = HostPolicy(build_host_library(source, build / "host"), 4, 2, 1)
            actions, head = host(obs)
            elf = build_firmware(source, build / "fw", obs[:64], 2, 1)
            device = run_firmware(elf, 2, 1)
            sizes = firmware_size(source, build / "size", 4, 1)
            count = instructions_per_inference(source, build / "timing", 4, 1)
            print(json.dumps({
                "benchmark": "export-c", "variant": name, "mlp": "4-64-64-2 tanh",
                "flash_bytes": sizes["flash"], "ram_bytes": sizes["ram"],
                "instructions_per_inference": round(count),
                "host_max_abs_error": float(np.abs(head - want_params).max()),
                "host_action_agreement": float(np.mean(actions[:, 0] == want_actions)),
                "qemu_action_agreement": float(np.mean(device.actions[:, 0] == want_actions[:64])),
            }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
