"""C for microcontrollers: an exported MLP policy as one dependency-light C file.

:func:`c_source` writes the acting path of an :class:`~fugu.export.graph.ActorGraph` as C99
with the weights in ``static const`` arrays (flash), two fixed activation buffers (RAM), no
``malloc`` and one entry point::

    int policy_act(const float *obs, const unsigned char *mask, float *actions);

``obs`` holds ``FUGU_OBS_SIZE`` floats, ``mask`` (or ``NULL``) ``FUGU_NUM_PARAMS`` legal-action
flags, and ``actions`` receives ``FUGU_ACTION_SIZE`` floats: the arg-max index of each
categorical component (as a float), or the Gaussian mean clipped to the action bounds.
``policy_params`` writes the head's raw outputs (for parity checks).

With a :class:`QuantizedGraph` (:func:`quantize`) the dense layers run in int8: weights with one
scale per tensor, each layer's input quantised with a scale calibrated on sample observations,
int32 accumulation, then the float bias and activation. :func:`quantized_params` is the numpy
mirror of that arithmetic.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models import PolicyConfig, make_policy
    >>> from fugu.export.graph import actor_graph
    >>> graph = actor_graph(make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2),
    ...                                 PolicyConfig(hidden_size=4)))
    >>> "int policy_act(const float *obs" in c_source(graph)
    True
    >>> q = quantize(graph, np.zeros((8, 3), np.float32))
    >>> [w.dtype for w in q.weights]
    [dtype('int8'), dtype('int8'), dtype('int8')]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fugu.export.graph import ActorGraph, require_mlp

__all__ = ["QuantizedGraph", "c_float", "c_source", "quantize", "quantized_params"]


@dataclass
class QuantizedGraph:
    """Int8 weights (hidden layers, then the head) with their per-tensor scales and the
    calibrated scale of each layer's input."""

    weights: list[np.ndarray]
    weight_scales: list[float]
    input_scales: list[float]
    feature_scales: np.ndarray
    """Per-feature scale of the first layer's inputs (folded into its weights)."""


def _normalised_inputs(graph: ActorGraph, obs: np.ndarray) -> np.ndarray:
    x = np.asarray(obs, np.float32).reshape(len(obs), -1) * np.float32(graph.obs_scale)
    if graph.norm_mean is not None:
        assert graph.norm_std is not None
        x = (x - graph.norm_mean) / graph.norm_std
        if graph.norm_clip is not None:
            x = np.clip(x, -graph.norm_clip, graph.norm_clip)
    return x.astype(np.float32)  # type: ignore[no-any-return]


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    from fugu.export.graph import _activate as activate

    return activate(x, name).astype(np.float32)  # type: ignore[no-any-return]


def _round_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (what the C code does), in float32."""
    return (np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))).astype(np.float32)  # type: ignore[no-any-return]


def _quantize_inputs(x: np.ndarray, scale: float) -> np.ndarray:
    q = _round_away(x * np.float32(1.0 / scale))
    return np.clip(q, -127, 127).astype(np.int32)  # type: ignore[no-any-return]


def _tensors(graph: ActorGraph) -> list[tuple[np.ndarray, np.ndarray]]:
    return [*graph.layers, (graph.head_weight, graph.head_bias)]


def quantize(graph: ActorGraph, calibration: np.ndarray) -> QuantizedGraph:
    """Int8 weights (symmetric, one scale per tensor: ``max|w| / 127``) and input scales set
    from the largest activation each layer meets on ``calibration`` observations.

    The first layer's inputs get one scale per feature (observation features differ in range
    by orders of magnitude; a cart's position and its velocity, say), folded into that layer's
    weights before they are quantised; the hidden layers' inputs one scale per tensor.
    """
    require_mlp(graph, "the int8 C export")
    weights, weight_scales, input_scales = [], [], []
    x = _normalised_inputs(graph, calibration)
    tensors = _tensors(graph)
    feature_scales = np.max(np.abs(x), axis=0) / 127.0 if len(x) else np.ones(x.shape[1])
    feature_scales = np.where(feature_scales > 0, feature_scales, 1.0).astype(np.float32)
    for index, (weight, _) in enumerate(tensors):
        if index == 0:
            weight = weight * feature_scales[None, :]  # acts on x / feature_scale
            x_scale = 1.0
        else:
            x_scale = float(np.max(np.abs(x))) / 127.0 if x.size else 0.0
            x_scale = x_scale or 1.0
        w_scale = float(np.max(np.abs(weight))) / 127.0 or 1.0
        q = np.clip(_round_away(weight / np.float32(w_scale)), -127, 127).astype(np.int8)
        weights.append(q)
        weight_scales.append(w_scale)
        input_scales.append(x_scale)
        if index < len(tensors) - 1:
            original, b = tensors[index]
            x = _activate(x @ original.T + b, graph.activation)
    return QuantizedGraph(weights, weight_scales, input_scales, feature_scales)


def quantized_params(graph: ActorGraph, quant: QuantizedGraph, obs: np.ndarray) -> np.ndarray:
    """The int8 path's head outputs ``[B, num_params]`` (numpy mirror of the C code)."""
    x = _normalised_inputs(graph, obs)
    tensors = _tensors(graph)
    for index, (_, bias) in enumerate(tensors):
        if index == 0:
            x = (x * (np.float32(1.0) / quant.feature_scales)).astype(np.float32)
        xq = _quantize_inputs(x, quant.input_scales[index])
        acc = xq @ quant.weights[index].astype(np.int32).T
        scale = np.float32(quant.weight_scales[index] * quant.input_scales[index])
        x = (acc.astype(np.float32) * scale + bias).astype(np.float32)
        if index < len(tensors) - 1:
            x = _activate(x, graph.activation)
    return x


def c_float(value: float | np.floating) -> str:
    """A C float literal that reads back as the same float32.

    Example:
        >>> c_float(0.0), c_float(1e-5), c_float(float("inf"))
        ('0.0f', '9.99999975e-06f', 'INFINITY')
    """
    if not np.isfinite(value):
        return "INFINITY" if value > 0 else ("-INFINITY" if value < 0 else "NAN")
    text = f"{float(np.float32(value)):.9g}"
    return (text if any(c in text for c in ".e") else text + ".0") + "f"


def _floats(values: np.ndarray) -> str:
    return _wrap([c_float(v) for v in np.asarray(values, np.float32).reshape(-1)])


def _ints(values: np.ndarray) -> str:
    return _wrap([str(int(v)) for v in np.asarray(values).reshape(-1)])


def _wrap(items: list[str], per_line: int = 12) -> str:
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "{\n    " + ",\n    ".join(lines) + "\n}"


_ACTIVATIONS = {
    "tanh": "tanhf(v)",
    "relu": "(v > 0.0f ? v : 0.0f)",
    "gelu": "0.5f * v * (1.0f + erff(v * 0.70710678f))",
}

_FLOAT_DENSE = """
static void dense(const float *x, int n_in, const float *w, const float *b, int n_out,
                  float *y, int activate) {
    for (int o = 0; o < n_out; ++o) {
        float s = b[o];
        const float *row = w + o * n_in;
        for (int i = 0; i < n_in; ++i) s += row[i] * x[i];
        y[o] = activate ? fugu_activate(s) : s;
    }
}
"""

_INT8_DENSE = """
static signed char xq[FUGU_MAX_WIDTH];

static void dense(const float *x, int n_in, const signed char *w, float w_scale,
                  float x_scale, const float *b, int n_out, float *y, int activate) {
    const float inv = 1.0f / x_scale;
    for (int i = 0; i < n_in; ++i) {
        float v = x[i] * inv;
        int q = v >= 0.0f ? (int)(v + 0.5f) : -(int)(-v + 0.5f);
        xq[i] = (signed char)(q > 127 ? 127 : (q < -127 ? -127 : q));
    }
    const float scale = w_scale * x_scale;
    for (int o = 0; o < n_out; ++o) {
        long acc = 0;
        const signed char *row = w + o * n_in;
        for (int i = 0; i < n_in; ++i) acc += (long)row[i] * (long)xq[i];
        float s = (float)acc * scale + b[o];
        y[o] = activate ? fugu_activate(s) : s;
    }
}
"""


def c_source(graph: ActorGraph, quant: QuantizedGraph | None = None) -> str:
    """The C99 file of ``graph`` (float32, or int8 with ``quant``); see the module docstring."""
    require_mlp(graph, "the C export")
    tensors = _tensors(graph)
    widths = [graph.obs_size, *(int(w.shape[0]) for w, _ in tensors)]
    action_size = graph.num_params if graph.kind == "box" else len(graph.nvec)
    out: list[str] = [
        f"/* A policy exported by fugu ({'int8' if quant else 'float32'} C). Observations: "
        f"{graph.obs_shape}; actions: {graph.kind}. */",
        "#include <math.h>",
        "#include <stddef.h>",
        "",
        f"#define FUGU_OBS_SIZE {graph.obs_size}",
        f"#define FUGU_NUM_PARAMS {graph.num_params}",
        f"#define FUGU_ACTION_SIZE {action_size}",
        f"#define FUGU_MAX_WIDTH {max(widths)}",
        "",
        "static float fugu_activate(float v) { return " + _ACTIVATIONS[graph.activation] + "; }",
    ]
    for index, (weight, bias) in enumerate(tensors):
        if quant is None:
            out.append(f"static const float W{index}[{weight.size}] = {_floats(weight)};")
        else:
            q = quant.weights[index]
            out.append(f"static const signed char W{index}[{q.size}] = {_ints(q)};")
        out.append(f"static const float B{index}[{bias.size}] = {_floats(bias)};")
    if graph.norm_mean is not None:
        assert graph.norm_std is not None
        out.append(f"static const float NORM_MEAN[{graph.obs_size}] = {_floats(graph.norm_mean)};")
        out.append(f"static const float NORM_STD[{graph.obs_size}] = {_floats(graph.norm_std)};")
    if graph.kind == "box":
        assert graph.low is not None and graph.high is not None
        out.append(f"static const float LOW[{graph.num_params}] = {_floats(graph.low)};")
        out.append(f"static const float HIGH[{graph.num_params}] = {_floats(graph.high)};")
    else:
        out.append(f"static const int NVEC[{len(graph.nvec)}] = {_ints(np.array(graph.nvec))};")
    if quant is not None:
        inverse = np.float32(1.0) / quant.feature_scales
        out.append(f"static const float INV_FEATURE_SCALE[{graph.obs_size}] = {_floats(inverse)};")
    out.append("static float buf_a[FUGU_MAX_WIDTH], buf_b[FUGU_MAX_WIDTH];")
    out.append(_INT8_DENSE if quant else _FLOAT_DENSE)
    out += [
        "void policy_params(const float *obs, float *params) {",
        "    float *x = buf_a, *y = buf_b, *t;",
        f"    for (int i = 0; i < FUGU_OBS_SIZE; ++i) x[i] = obs[i] * {c_float(graph.obs_scale)};",
    ]
    if graph.norm_mean is not None:
        out.append("    for (int i = 0; i < FUGU_OBS_SIZE; ++i) {")
        out.append("        x[i] = (x[i] - NORM_MEAN[i]) / NORM_STD[i];")
        if graph.norm_clip is not None:
            clip = c_float(graph.norm_clip)
            out.append(f"        if (x[i] > {clip}) x[i] = {clip};")
            out.append(f"        if (x[i] < -{clip}) x[i] = -{clip};")
        out.append("    }")
    if quant is not None:
        out.append("    for (int i = 0; i < FUGU_OBS_SIZE; ++i) x[i] *= INV_FEATURE_SCALE[i];")
    n_in = graph.obs_size
    for index, (weight, _) in enumerate(tensors):
        n_out = int(weight.shape[0])
        last = index == len(tensors) - 1
        target = "params" if last else "y"
        args = f"W{index}, B{index}"
        if quant is not None:
            ws, xs = quant.weight_scales[index], quant.input_scales[index]
            args = f"W{index}, {c_float(ws)}, {c_float(xs)}, B{index}"
        out.append(f"    dense(x, {n_in}, {args}, {n_out}, {target}, {0 if last else 1});")
        if not last:
            out.append("    t = x; x = y; y = t;")
        n_in = n_out
    out.append("}")
    out += [
        "",
        "int policy_act(const float *obs, const unsigned char *mask, float *actions) {",
        "    static float p[FUGU_NUM_PARAMS];",
        "    policy_params(obs, p);",
    ]
    if graph.kind == "box":
        out += [
            "    for (int i = 0; i < FUGU_NUM_PARAMS; ++i) {",
            "        float v = p[i] < LOW[i] ? LOW[i] : p[i];",
            "        actions[i] = v > HIGH[i] ? HIGH[i] : v;",
            "    }",
        ]
    else:
        out += [
            "    int start = 0;",
            "    for (int k = 0; k < FUGU_ACTION_SIZE; ++k) {",
            "        int best = 0, found = 0;",
            "        for (int i = 0; i < NVEC[k]; ++i) {",
            "            if (mask != NULL && !mask[start + i]) continue;",
            "            if (!found || p[start + i] > p[start + best]) { best = i; found = 1; }",
            "        }",
            "        actions[k] = (float)best;",
            "        start += NVEC[k];",
            "    }",
        ]
    out += ["    return 0;", "}", ""]
    return "\n".join(out)
