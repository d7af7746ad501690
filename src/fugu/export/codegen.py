"""Dependency-free runtimes: an exported policy as one Python file, numpy-only or pure Python.

Both files hold the weights and an ``act(obs, action_mask=None)`` function computing
:func:`fugu.export.graph.act`: the numpy file takes ``[B, *obs_shape]`` arrays, the pure-Python
file one observation (a flat list of floats) and returns one action (an int, a list of ints,
or a list of floats), with nothing to import but ``math``: the form that also runs on
MicroPython. The numpy file also runs CNN encoders. Recurrent (LSTM) policies are exported
with ``initial_state(...)`` and ``step(obs, state, action_mask=None) -> (actions, state)``
(and ``step_params``, the head's outputs): the caller carries the state and starts each
episode from ``initial_state``.

Example:
    >>> from gymnasium import spaces
    >>> from fugu.models import PolicyConfig, make_policy
    >>> from fugu.export.graph import actor_graph
    >>> graph = actor_graph(make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2),
    ...                                 PolicyConfig(hidden_size=4)))
    >>> namespace = {}
    >>> exec(python_source(graph), namespace)
    >>> namespace["act"]([0.0, 0.5, -0.5]) in (0, 1)
    True
"""

from __future__ import annotations

import base64

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.export.graph import ActorGraph, require_mlp

__all__ = ["micropython_source", "numpy_source", "python_source"]

_HEADER = '''"""A policy exported by fugu ({what}). Observations: {obs_shape}; actions: {kind}.

``act(obs, action_mask=None)``: deterministic actions ({doc}).
"""
'''


def _constants(graph: ActorGraph) -> dict[str, object]:
    return {
        "OBS_SHAPE": tuple(graph.obs_shape),
        "OBS_SCALE": graph.obs_scale,
        "NORM_CLIP": graph.norm_clip,
        "ACTIVATION": graph.activation,
        "KIND": graph.kind,
        "NVEC": list(graph.nvec),
    }


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode("ascii")


_NUMPY_BODY = '''
def _array(text, shape):
    return np.frombuffer(base64.b64decode(text), np.float32).reshape(shape)


def _activate(x):
    if ACTIVATION == "tanh":
        return np.tanh(x)
    if ACTIVATION == "relu":
        return np.maximum(x, 0.0)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)


LAYERS = [(_array(w, ws), _array(b, (ws[0],))) for w, ws, b in _LAYERS]
CONVS = [(_array(w, ws), _array(b, (ws[0],)), st, pad) for w, ws, b, st, pad in _CONVS]
LSTM = None if _LSTM is None else [_array(*spec) for spec in _LSTM]
HEAD_W, HEAD_B = _array(*_HEAD_W), _array(*_HEAD_B)
NORM_MEAN = None if _NORM_MEAN is None else _array(*_NORM_MEAN)
NORM_STD = None if _NORM_STD is None else _array(*_NORM_STD)
LOW = None if _LOW is None else _array(*_LOW)
HIGH = None if _HIGH is None else _array(*_HIGH)


def _conv(x, weight, bias, stride, pad):
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = weight.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    out = np.einsum("bchwij,ocij->bohw", windows, weight, optimize=True)
    return (out + bias[None, :, None, None]).astype(np.float32)


def _features(obs):
    x = np.asarray(obs, np.float32).reshape(len(obs), -1) * np.float32(OBS_SCALE)
    if NORM_MEAN is not None:
        x = (x - NORM_MEAN) / NORM_STD
        if NORM_CLIP is not None:
            x = np.clip(x, -NORM_CLIP, NORM_CLIP)
    if CONVS:
        x = x.reshape(len(obs), *OBS_SHAPE)
        for weight, bias, stride, pad in CONVS:
            x = _activate(_conv(x, weight, bias, stride, pad))
        x = x.reshape(len(obs), -1)
    for weight, bias in LAYERS:
        x = _activate(x @ weight.T + bias)
    return x


def params(obs):
    """The actor head's outputs [B, n] for observations [B, *obs_shape] (feed-forward)."""
    if LSTM is not None:
        raise TypeError("a recurrent policy: use step_params(obs, state)")
    return (_features(obs) @ HEAD_W.T + HEAD_B).astype(np.float32)


def initial_state(batch_size=1):
    """The zero LSTM state (h, c) of batch_size rows, for the first step of an episode."""
    zeros = np.zeros((batch_size, LSTM[1].shape[1]), np.float32)
    return zeros, zeros.copy()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def step_params(obs, state=None):
    """(head outputs [B, n], next state) of a recurrent policy (state None: zeros)."""
    x = _features(obs)
    h, c = initial_state(len(obs)) if state is None else state
    w_ih, w_hh, b_ih, b_hh = LSTM
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return (h @ HEAD_W.T + HEAD_B).astype(np.float32), (h, c)


def step(obs, state=None, action_mask=None):
    """(deterministic actions, next state) of a recurrent policy."""
    out, state = step_params(obs, state)
    return _decode(out, action_mask), state


def act(obs, action_mask=None):
    """Deterministic actions for observations [B, *obs_shape] (feed-forward)."""
    return _decode(params(obs), action_mask)


def _decode(out, action_mask):
    if KIND == "box":
        return np.clip(out, LOW, HIGH)
    if action_mask is not None:
        out = np.where(np.asarray(action_mask, bool), out, -np.inf)
    parts, start = [], 0
    for n in NVEC:
        parts.append(out[:, start : start + n].argmax(-1))
        start += n
    actions = np.stack(parts, -1)
    return actions[:, 0] if KIND == "discrete" else actions
'''


def numpy_source(graph: ActorGraph, what: str = "numpy runtime") -> str:
    """A Python module that needs only numpy (weights embedded, base64 float32)."""

    def spec(array: np.ndarray | None) -> str:
        return "None" if array is None else repr((_b64(array), tuple(array.shape)))

    layers = ",\n    ".join(repr((_b64(w), tuple(w.shape), _b64(b))) for w, b in graph.layers)
    convs = ",\n    ".join(
        repr((_b64(c.weight), tuple(c.weight.shape), _b64(c.bias), c.stride, c.padding))
        for c in graph.convs
    )
    cell = graph.lstm
    lstm = "None"
    if cell is not None:
        lstm = repr(
            [
                (_b64(a), tuple(a.shape))
                for a in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
            ]
        )
    doc = "numpy arrays in, batched"
    if cell is not None:
        doc += "; recurrent: step(obs, state) carries the LSTM state"
    lines = [
        _HEADER.format(what=what, obs_shape=graph.obs_shape, kind=graph.kind, doc=doc),
        "import base64\nimport math\n\nimport numpy as np\n",
        *(f"{k} = {v!r}" for k, v in _constants(graph).items()),
        f"_LAYERS = [\n    {layers},\n]",
        f"_CONVS = [{convs}]",
        f"_LSTM = {lstm}",
        f"_HEAD_W = {spec(graph.head_weight)}",
        f"_HEAD_B = {spec(graph.head_bias)}",
        f"_NORM_MEAN = {spec(graph.norm_mean)}",
        f"_NORM_STD = {spec(graph.norm_std)}",
        f"_LOW = {spec(graph.low)}",
        f"_HIGH = {spec(graph.high)}",
        _NUMPY_BODY,
    ]
    return "\n".join(lines)


_PYTHON_BODY = '''

def _activate(v):
    if ACTIVATION == "tanh":
        return math.tanh(v)
    if ACTIVATION == "relu":
        return v if v > 0.0 else 0.0
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


def _dense(x, weight, bias, activate):
    out = []
    for row, b in zip(weight, bias):
        s = b
        for w, v in zip(row, x):
            s += w * v
        out.append(_activate(s) if activate else s)
    return out


def _features(obs):
    x = [float(v) * OBS_SCALE for v in obs]
    if NORM_MEAN is not None:
        x = [(v - m) / s for v, m, s in zip(x, NORM_MEAN, NORM_STD)]
        if NORM_CLIP is not None:
            x = [min(max(v, -NORM_CLIP), NORM_CLIP) for v in x]
    for weight, bias in LAYERS:
        x = _dense(x, weight, bias, True)
    return x


def params(obs):
    """The actor head's outputs for one flat observation (a list of floats)."""
    if LSTM is not None:
        raise TypeError("a recurrent policy: use step_params(obs, state)")
    return _dense(_features(obs), HEAD_W, HEAD_B, False)


def initial_state():
    """The zero LSTM state (h, c), for the first step of an episode."""
    n = len(LSTM[1][0])
    return [0.0] * n, [0.0] * n


def _sigmoid(v):
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def step_params(obs, state=None):
    """(head outputs, next state) of a recurrent policy for one flat observation."""
    x = _features(obs)
    h, c = initial_state() if state is None else state
    w_ih, w_hh, b_ih, b_hh = LSTM
    gates = [a + b for a, b in zip(_dense(x, w_ih, b_ih, False), _dense(h, w_hh, b_hh, False))]
    n = len(h)
    c = [
        _sigmoid(gates[n + k]) * c[k] + _sigmoid(gates[k]) * math.tanh(gates[2 * n + k])
        for k in range(n)
    ]
    h = [_sigmoid(gates[3 * n + k]) * math.tanh(c[k]) for k in range(n)]
    return _dense(h, HEAD_W, HEAD_B, False), (h, c)


def step(obs, state=None, action_mask=None):
    """(deterministic action, next state) of a recurrent policy for one flat observation."""
    out, state = step_params(obs, state)
    return _decode(out, action_mask), state


def act(obs, action_mask=None):
    """The deterministic action for one flat observation."""
    return _decode(params(obs), action_mask)


def _decode(out, action_mask):
    if KIND == "box":
        return [min(max(v, lo), hi) for v, lo, hi in zip(out, LOW, HIGH)]
    actions, start = [], 0
    for n in NVEC:
        best, best_value = 0, None
        for i in range(n):
            if action_mask is not None and not action_mask[start + i]:
                continue
            if best_value is None or out[start + i] > best_value:
                best, best_value = i, out[start + i]
        actions.append(best)
        start += n
    return actions[0] if KIND == "discrete" else actions
'''


def python_source(graph: ActorGraph, what: str = "pure Python runtime") -> str:
    """A Python module with no import but ``math`` (weights as nested lists of floats)."""

    def lst(array: np.ndarray | None) -> str:
        return "None" if array is None else repr(np.asarray(array, np.float64).tolist())

    if graph.convs:
        raise APIUsageError(
            "the pure-Python export runs MLP and MLP+LSTM policies; export CNN policies as "
            "onnx or numpy"
        )
    layers = ",\n    ".join(f"({lst(w)}, {lst(b)})" for w, b in graph.layers)
    cell = graph.lstm
    lstm = "None"
    if cell is not None:
        parts = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        lstm = "[" + ", ".join(lst(a) for a in parts) + "]"
    lines = [
        _HEADER.format(
            what=what,
            obs_shape=graph.obs_shape,
            kind=graph.kind,
            doc="one flat observation in, one action out",
        ),
        "import math\n",
        *(f"{k} = {v!r}" for k, v in _constants(graph).items()),
        f"LAYERS = [\n    {layers},\n]",
        f"LSTM = {lstm}",
        f"HEAD_W = {lst(graph.head_weight)}",
        f"HEAD_B = {lst(graph.head_bias)}",
        f"NORM_MEAN = {lst(graph.norm_mean)}",
        f"NORM_STD = {lst(graph.norm_std)}",
        f"LOW = {lst(graph.low)}",
        f"HIGH = {lst(graph.high)}",
        _PYTHON_BODY,
    ]
    return "\n".join(lines)


_MICROPYTHON_BODY = '''

def _activate(v):
    if ACTIVATION == "tanh":
        return math.tanh(v)
    if ACTIVATION == "relu":
        return v if v > 0.0 else 0.0
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


def _dense(x, weight, bias, activate):
    n_in, out = len(x), []
    for o in range(len(bias)):
        s, base = bias[o], o * n_in
        for i in range(n_in):
            s += weight[base + i] * x[i]
        out.append(_activate(s) if activate else s)
    return out


def params(obs):
    """The actor head's outputs for one flat observation (a list of floats)."""
    x = [float(v) * OBS_SCALE for v in obs]
    if NORM_MEAN is not None:
        x = [(x[i] - NORM_MEAN[i]) / NORM_STD[i] for i in range(len(x))]
        if NORM_CLIP is not None:
            x = [min(max(v, -NORM_CLIP), NORM_CLIP) for v in x]
    for weight, bias in LAYERS:
        x = _dense(x, weight, bias, True)
    return _dense(x, HEAD_W, HEAD_B, False)
'''


def micropython_source(graph: ActorGraph) -> str:
    """A module for MicroPython (and CPython): weights packed as base64 float32 and unpacked
    into ``array('f')`` at import (4 bytes a weight: a 2x64 MLP fits a 1 MB heap, where list
    literals of Python floats do not), with ``act``/``params`` on one flat observation."""
    require_mlp(graph, "the MicroPython export")

    def packed(array: np.ndarray | None) -> str:
        return "None" if array is None else f"_unpack({_b64(array)!r})"

    layers = ",\n    ".join(f"({packed(w)}, {packed(b)})" for w, b in graph.layers)
    act_body = _PYTHON_BODY[_PYTHON_BODY.index("def act(") :]
    lines = [
        _HEADER.format(
            what="MicroPython runtime",
            obs_shape=graph.obs_shape,
            kind=graph.kind,
            doc="one flat observation in, one action out",
        ),
        "import math\nfrom array import array\nfrom binascii import a2b_base64\n",
        '\ndef _unpack(text):\n    return array("f", a2b_base64(text))\n',
        *(f"{k} = {v!r}" for k, v in _constants(graph).items()),
        f"LAYERS = [\n    {layers},\n]",
        f"HEAD_W = {packed(graph.head_weight)}",
        f"HEAD_B = {packed(graph.head_bias)}",
        f"NORM_MEAN = {packed(graph.norm_mean)}",
        f"NORM_STD = {packed(graph.norm_std)}",
        f"LOW = {packed(graph.low)}",
        f"HIGH = {packed(graph.high)}",
        _MICROPYTHON_BODY,
        "\n" + act_body,
    ]
    return "\n".join(lines)
