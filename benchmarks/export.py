"""Batch-1 inference latency of an exported 2x64 MLP policy: torch eager, the numpy-only
runtime, the pure-Python runtime and onnxruntime, interleaved in one run. One JSON line each.

With ``--exporters``, instead: torch's legacy (TorchScript) and dynamo (``torch.export``)
ONNX exporters on the same policy, each cold in a fresh process, alternated ``--repeats``
times: export seconds (the first export of the process, imports excluded), file size and
node count.

Usage: ``python benchmarks/export.py [--repeats 5] [--calls 2000] [--exporters]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from fugu.export.codegen import numpy_source, python_source
from fugu.export.graph import actor_graph
from fugu.export.onnx import export_onnx
from fugu.models import PolicyConfig, make_policy

_COLD_EXPORT = """
import json, sys, tempfile, time
import onnx, torch
from gymnasium import spaces
from fugu.export.graph import actor_graph
from fugu.export.onnx import export_onnx
from fugu.models import PolicyConfig, make_policy
torch.set_num_threads(1)
torch.manual_seed(0)
graph = actor_graph(make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2),
                                PolicyConfig(hidden_size=64)))
path = tempfile.mkdtemp() + "/policy.onnx"
start = time.perf_counter()
export_onnx(graph, path, exporter=sys.argv[1])
seconds = time.perf_counter() - start
model = onnx.load(path)
print(json.dumps({"seconds": seconds, "bytes": len(open(path, "rb").read()),
                  "nodes": len(model.graph.node),
                  "ops": sorted({n.op_type for n in model.graph.node})}))
"""


def exporters(repeats: int) -> int:
    """Cold export time, size and node count of the legacy and dynamo exporters."""
    import subprocess

    runs: dict[str, list[dict]] = {"legacy": [], "dynamo": []}
    for _ in range(repeats):
        for name, results in runs.items():
            out = subprocess.run([sys.executable, "-c", _COLD_EXPORT, name], check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            results.append(json.loads(out.strip().splitlines()[-1]))
    for name, results in runs.items():
        print(json.dumps({"benchmark": "onnx-exporter", "exporter": name, "repeats": repeats,
                          "cold_export_s": statistics.median(r["seconds"] for r in results),
                          "bytes": results[0]["bytes"], "nodes": results[0]["nodes"],
                          "ops": results[0]["ops"]}))  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--exporters", action="store_true", help="compare the ONNX exporters")
    args = parser.parse_args()
    if args.exporters:
        return exporters(args.repeats)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    policy = make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), PolicyConfig(hidden_size=64))
    graph = actor_graph(policy)
    obs = np.zeros((1, 4), np.float32)
    namespaces: dict[str, dict] = {"numpy": {}, "python": {}}
    exec(numpy_source(graph), namespaces["numpy"])
    exec(python_source(graph), namespaces["python"])
    impls = {}

    def torch_eager() -> None:
        with torch.inference_mode():
            params, _, _ = policy.forward_eval(torch.from_numpy(obs))
            policy.distribution.mode(params)

    impls["torch-eager"] = torch_eager
    impls["numpy-runtime"] = lambda: namespaces["numpy"]["act"](obs)
    row = obs[0].tolist()
    impls["python-runtime"] = lambda: namespaces["python"]["act"](row)
    try:
        import onnxruntime

        path = Path(tempfile.mkdtemp()) / "policy.onnx"
        export_onnx(graph, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        impls["onnxruntime"] = lambda: session.run(["actions"], {"obs": obs})
    except ImportError:  # pragma: no cover - the export extra is in the dev extras
        pass
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(args.repeats):
        for name, fn in impls.items():  # interleaved
            for _ in range(100):
                fn()
            start = time.perf_counter()
            for _ in range(args.calls):
                fn()
            times[name].append((time.perf_counter() - start) / args.calls * 1e6)
    base = statistics.median(times["torch-eager"])
    for name, values in times.items():
        median = statistics.median(values)
        print(json.dumps({"benchmark": "export-latency", "impl": name, "batch": 1,
                          "median_us": median, "speedup_vs_torch": base / median}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
