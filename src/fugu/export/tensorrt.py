"""The TensorRT-ready profile of an ONNX export, its checks, and an engine build.

A TensorRT-ready file is the ONNX export with every shape static (the batch fixed, at
:data:`TENSORRT_OPSET`), checked three ways before it is handed on:

- every node's ``op_type`` is in :data:`TENSORRT_OPS`, the ops fugu's exporter emits that
  TensorRT's ONNX parser reads (fugu's own list, from the parser's documented operator
  support; an op outside it fails the check by name);
- every input and output has a fixed shape (no symbolic dimension);
- the numbers fit fp16: the largest magnitude of the weights and of every intermediate
  tensor over the parity observations (read by running the graph in onnxruntime with each
  node's outputs exposed) stays below fp16's largest value (65504), and the actor run in fp16
  (numpy, weights and activations rounded to half precision) is compared with float32: the
  largest head-output difference and the action agreement.

:func:`build_engine` turns the file into a serialized engine where the ``tensorrt`` package
is importable (a CUDA machine) and raises :class:`~fugu.core.errors.MissingDependencyError`
elsewhere.

Example:
    >>> sorted(TENSORRT_OPS)[:4]
    ['Add', 'ArgMax', 'Cast', 'Clip']
    >>> FP16_MAX
    65504.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError, MissingDependencyError, missing_dependency
from fugu.export.graph import ActorGraph, decode_actions, params, step

__all__ = [
    "FP16_MAX",
    "TENSORRT_OPS",
    "TENSORRT_OPSET",
    "TensorRTReport",
    "build_engine",
    "check_tensorrt",
    "fp16_parity",
]

TENSORRT_OPSET = 17
"""Opset of TensorRT-ready files: read by TensorRT 8.6 and every later release."""

FP16_MAX = 65504.0
"""The largest finite fp16 value."""

TENSORRT_OPS = frozenset(
    {
        # dense layers, convolutions, the LSTM cell's matrix products
        "Gemm",
        "MatMul",
        "Conv",
        "Add",
        "Sub",
        "Mul",
        "Div",
        # activations and gates
        "Tanh",
        "Relu",
        "Sigmoid",
        "Erf",
        # normalisation clip, box-action clip
        "Clip",
        "Max",
        "Min",
        # action decoding and masks
        "ArgMax",
        "Where",
        "Not",
        "Equal",
        # shapes and plumbing
        "Reshape",
        "Flatten",
        "Constant",
        "Shape",
        "Gather",
        "Slice",
        "Split",
        "Concat",
        "Unsqueeze",
        "Squeeze",
        "Cast",
        "Identity",
        "Expand",
        "ConstantOfShape",
    }
)
"""ONNX ops fugu's exporter emits that TensorRT's ONNX parser supports (opset 17)."""


@dataclass
class TensorRTReport:
    """What the TensorRT checks found about one file."""

    opset: int
    batch_size: int
    op_types: list[str]
    """Distinct op types of the graph, sorted."""
    unsupported_ops: list[str]
    """Op types outside :data:`TENSORRT_OPS` (empty when the file is ready)."""
    dynamic_inputs: list[str]
    """Inputs or outputs with a symbolic dimension (empty when the file is ready)."""
    max_abs_weight: float
    max_abs_activation: float
    """Largest magnitude of any float tensor the graph computes over the parity observations."""
    fp16_max_abs_error: float
    """Largest head-output difference between the actor run in fp16 and in float32."""
    fp16_action_agreement: float
    notes: list[str] = field(default_factory=list)

    @property
    def fp16_safe(self) -> bool:
        """Weights and activations within fp16's finite range."""
        return max(self.max_abs_weight, self.max_abs_activation) < FP16_MAX

    @property
    def is_ready(self) -> bool:
        """Only supported ops, static shapes and fp16-safe ranges."""
        return not self.unsupported_ops and not self.dynamic_inputs and self.fp16_safe

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (with ``fp16_safe`` and ``is_ready``)."""
        return {**asdict(self), "fp16_safe": self.fp16_safe, "is_ready": self.is_ready}


def _load(path: str | Path) -> Any:
    try:
        import onnx
    except ImportError as error:
        raise missing_dependency("onnx", "export") from error
    return onnx.load(str(path))


def _max_activation(model: Any, feeds: list[dict[str, np.ndarray]]) -> float:
    """Largest magnitude of every float tensor in ``model`` over ``feeds`` (onnxruntime, each
    node's outputs made graph outputs)."""
    import onnx
    import onnxruntime

    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    exposed = onnx.ModelProto()
    exposed.CopyFrom(inferred)
    names = [o.name for o in exposed.graph.output]
    for node in exposed.graph.node:
        for name in node.output:
            if name in known and name not in names:
                exposed.graph.output.append(known[name])
                names.append(name)
    session = onnxruntime.InferenceSession(
        exposed.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    largest = 0.0
    for feed in feeds:
        for value in session.run(names, feed):
            array = np.asarray(value)
            if np.issubdtype(array.dtype, np.floating) and array.size:
                finite = array[np.isfinite(array)]  # -inf fills masked logits by design
                if finite.size:
                    largest = max(largest, float(np.max(np.abs(finite))))
    return largest


def fp16_parity(
    graph: ActorGraph, obs: np.ndarray, starts: np.ndarray | None = None
) -> tuple[float, float]:
    """``(max abs head-output error, action agreement)`` of the actor in fp16 against float32.

    Feed-forward graphs take ``obs [N, *obs_shape]``; recurrent ones sequences ``obs [T, B,
    *obs_shape]`` with ``starts [T, B]`` (the state is zeroed where an episode starts).
    """
    with np.errstate(all="ignore"):  # fp16 overflow is what is measured
        full, half = _full_and_half(graph, obs, starts)
    diff = np.abs(half.astype(np.float64) - full)
    error = (float(np.max(diff)) if np.isfinite(diff).all() else float("inf")) if diff.size else 0.0
    a, b = decode_actions(graph, full), decode_actions(graph, half)
    same = (a == b) if graph.kind != "box" else np.abs(a - b) <= 1e-2
    same = same.reshape(len(a), -1).all(-1)
    return error, float(np.mean(same)) if len(same) else 1.0


def _full_and_half(
    graph: ActorGraph, obs: np.ndarray, starts: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if graph.lstm is None:
        full, half = params(graph, obs), params(graph, obs, np.float16)
    else:
        outs: dict[Any, list[np.ndarray]] = {np.float32: [], np.float16: []}
        for dtype in outs:
            state = None
            for t in range(len(obs)):
                if state is not None and starts is not None:
                    keep = (~np.asarray(starts[t], bool))[:, None]
                    state = (state[0] * keep, state[1] * keep)
                out, state = step(graph, obs[t], state, dtype)
                outs[dtype].append(out)
        full, half = np.concatenate(outs[np.float32]), np.concatenate(outs[np.float16])
    return full, half


def check_tensorrt(
    path: str | Path,
    graph: ActorGraph,
    obs: np.ndarray,
    starts: np.ndarray | None = None,
) -> TensorRTReport:
    """Check a file written with the TensorRT profile (see the module).

    Args:
        path: The ONNX file.
        graph: The actor it was written from (for the fp16 run).
        obs: Parity observations: ``[N, *obs_shape]``, or ``[T, B, *obs_shape]`` sequences for
            a recurrent graph (with ``starts [T, B]``).
        starts: Episode starts of recurrent sequences.
    """
    import onnx

    model = _load(path)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    op_types = sorted({node.op_type for node in model.graph.node})
    dynamic = []
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            dynamic.append(value.name)
    weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    weights.append(onnx.numpy_helper.to_array(attr.t))
    floats = [np.abs(w) for w in weights if np.issubdtype(w.dtype, np.floating) and w.size]
    finite = [w[np.isfinite(w)] for w in floats]
    max_weight = max((float(w.max()) for w in finite if w.size), default=0.0)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    feeds = _feeds(model, graph, obs, starts, int(batch or 1))
    max_activation = _max_activation(model, feeds)
    fp16_error, fp16_agreement = fp16_parity(graph, obs, starts)
    notes = []
    if graph.activation == "gelu":
        notes.append("gelu is exported as Erf: TensorRT reads it; its fp16 kernel is slower")
    return TensorRTReport(
        opset=int(opset),
        batch_size=int(batch),
        op_types=op_types,
        unsupported_ops=[op for op in op_types if op not in TENSORRT_OPS],
        dynamic_inputs=dynamic,
        max_abs_weight=max_weight,
        max_abs_activation=max_activation,
        fp16_max_abs_error=fp16_error,
        fp16_action_agreement=fp16_agreement,
        notes=notes,
    )


def _feeds(
    model: Any, graph: ActorGraph, obs: np.ndarray, starts: np.ndarray | None, batch: int
) -> list[dict[str, np.ndarray]]:
    """Feeds of exactly ``batch`` rows covering ``obs`` (recurrent: zero states; the
    activations of later steps are bounded by the gates, |h|, |c| grow at most by 1 a step)."""
    names = {i.name for i in model.graph.input}
    rows = np.asarray(obs, np.float32).reshape(-1, *graph.obs_shape)
    feeds = []
    for begin in range(0, len(rows), batch):
        piece = rows[begin : begin + batch]
        if len(piece) < batch:
            piece = np.concatenate([piece, np.repeat(piece[-1:], batch - len(piece), 0)])
        feed = {"obs": piece}
        if graph.lstm is not None:
            zeros = np.zeros((batch, graph.lstm.hidden_size), np.float32)
            feed["h"], feed["c"] = zeros, zeros
        if "action_mask" in names:
            feed["action_mask"] = np.ones((batch, graph.num_params), bool)
        feeds.append(feed)
    return feeds


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    *,
    fp16: bool = True,
    workspace_bytes: int = 1 << 28,
) -> Path:
    """Build a serialized TensorRT engine from a TensorRT-ready ONNX file.

    Args:
        onnx_path: A file written by ``export(..., profile="tensorrt")``.
        engine_path: Where to write the engine (``.engine`` / ``.plan``).
        fp16: Let TensorRT choose fp16 kernels.
        workspace_bytes: The builder's workspace memory pool.

    Raises:
        MissingDependencyError: ``tensorrt`` is not importable (it needs a CUDA machine:
            ``pip install tensorrt``).
        APIUsageError: TensorRT's parser or builder rejected the file (its errors quoted).
    """
    try:
        import tensorrt as trt
    except ImportError as error:
        raise MissingDependencyError(
            "building a TensorRT engine needs the 'tensorrt' package and a CUDA GPU "
            "(pip install tensorrt, on a machine with NVIDIA drivers); the ONNX file itself "
            "is ready for trtexec --onnx=<file> on such a machine"
        ) from error
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt, "NetworkDefinitionCreationFlag") and hasattr(
        trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"
    ):  # TensorRT < 10 needs it; 10 has explicit batch only
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise APIUsageError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise APIUsageError(f"TensorRT could not build an engine from {onnx_path}")
    out = Path(engine_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(engine))
    return out
