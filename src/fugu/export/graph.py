"""A trained MLP policy's acting path as plain arrays: what every export target runs.

:func:`actor_graph` reads a :class:`~fugu.models.Policy` (feed-forward MLP) into an
:class:`ActorGraph`: observation scale and normalisation, the hidden layers and their
activation, the actor's rows of the head, and how parameters become a deterministic action
(argmax per categorical, legal actions only when a mask is given; the Gaussian mean clipped to
the action bounds). :func:`act` is the numpy reference of that path; the exporters generate
code or graphs that compute the same thing.

Example:
    >>> import torch
    >>> from gymnasium import spaces
    >>> from fugu.models import make_policy
    >>> policy = make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(3))
    >>> graph = actor_graph(policy)
    >>> graph.kind, [w.shape for w, _ in graph.layers], graph.head_weight.shape
    ('discrete', [(64, 4), (64, 64)], (3, 64))
    >>> act(graph, np.zeros((2, 4), np.float32)).shape
    (2,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError

__all__ = [
    "ActorGraph",
    "Conv",
    "Lstm",
    "act",
    "actor_graph",
    "decode_actions",
    "params",
    "require_mlp",
    "step",
]


@dataclass
class Conv:
    """One convolution of a CNN encoder (followed by the graph's activation)."""

    weight: np.ndarray
    """``[out_channels, in_channels, k, k]``."""
    bias: np.ndarray
    stride: int
    padding: int


@dataclass
class Lstm:
    """An LSTM cell (torch's ``nn.LSTMCell`` layout: gates ``i, f, g, o`` stacked)."""

    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray

    @property
    def hidden_size(self) -> int:
        """Width of ``h`` and ``c``."""
        return int(self.weight_hh.shape[1])


@dataclass
class ActorGraph:
    """The arrays and choices of a deterministic MLP actor."""

    obs_shape: tuple[int, ...]
    obs_scale: float
    norm_mean: np.ndarray | None
    norm_std: np.ndarray | None
    norm_clip: float | None
    activation: str
    layers: list[tuple[np.ndarray, np.ndarray]]
    head_weight: np.ndarray
    head_bias: np.ndarray
    kind: str
    """``"discrete"``, ``"multi_discrete"`` or ``"box"``."""
    nvec: list[int]
    """Categories per component (discrete kinds; one entry for ``discrete``)."""
    low: np.ndarray | None
    high: np.ndarray | None
    convs: list[Conv] = field(default_factory=list)
    """CNN encoders: the convolutions before ``layers`` (then flattened)."""
    lstm: Lstm | None = None
    """Recurrent policies: the cell between the encoder and the head."""

    @property
    def is_recurrent(self) -> bool:
        """Whether the actor carries ``(h, c)`` between steps."""
        return self.lstm is not None

    @property
    def is_mlp(self) -> bool:
        """Whether the actor is a plain feed-forward MLP (what every target exports)."""
        return self.lstm is None and not self.convs

    @property
    def architecture(self) -> str:
        """``"mlp"``, ``"cnn"``, ``"mlp+lstm"`` or ``"cnn+lstm"``."""
        base = "cnn" if self.convs else "mlp"
        return f"{base}+lstm" if self.lstm is not None else base

    @property
    def obs_size(self) -> int:
        """Flat observation size."""
        return int(np.prod(self.obs_shape))

    @property
    def num_params(self) -> int:
        """Outputs of the actor head (logits, or the Gaussian mean)."""
        return int(self.head_bias.shape[0])


def require_mlp(graph: ActorGraph, target: str) -> None:
    """Refuse a CNN or recurrent graph for a target that only runs feed-forward MLPs.

    Raises:
        APIUsageError: ``graph`` is not a plain MLP.
    """
    if not graph.is_mlp:
        raise APIUsageError(
            f"{target} supports feed-forward MLP policies; this one is {graph.architecture!r} "
            "(export CNN and LSTM policies as onnx or numpy; LSTM also as python)"
        )


def _arr(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32).copy()


def _encoder(policy: Any) -> tuple[list[Conv], list[tuple[np.ndarray, np.ndarray]]]:
    """The convolutions and dense layers of the actor's encoder, in order."""
    convs: list[Conv] = []
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    if policy._mlp_layers is not None:
        return convs, [(_arr(m.weight), _arr(m.bias)) for m in policy._mlp_layers]
    for module in policy.encoder.modules():
        if isinstance(module, torch.nn.Conv2d):
            stride, padding = module.stride, module.padding
            if stride[0] != stride[1] or not isinstance(padding, tuple) or padding[0] != padding[1]:
                raise APIUsageError("export supports square strides and symmetric padding")
            bias = module.bias if module.bias is not None else torch.zeros(module.out_channels)
            convs.append(Conv(_arr(module.weight), _arr(bias), stride[0], padding[0]))
        elif isinstance(module, torch.nn.Linear):
            layers.append((_arr(module.weight), _arr(module.bias)))
    return convs, layers


def actor_graph(policy: Any) -> ActorGraph:
    """The acting path of a :class:`~fugu.models.Policy` (MLP, CNN, LSTM core) as arrays.

    Raises:
        APIUsageError: The policy has a layer export cannot express.
    """
    config = policy.config
    arr = _arr
    convs, layers = _encoder(policy)
    lstm = None
    if policy.lstm is not None:
        cell = policy.lstm
        lstm = Lstm(arr(cell.weight_ih), arr(cell.weight_hh), arr(cell.bias_ih), arr(cell.bias_hh))
    n = policy.num_params
    space = policy.action_space
    if isinstance(space, spaces.Discrete):
        kind, nvec = "discrete", [int(space.n)]
    elif isinstance(space, spaces.MultiDiscrete):
        kind, nvec = "multi_discrete", [int(v) for v in np.asarray(space.nvec).reshape(-1)]
    elif isinstance(space, spaces.Box):
        kind, nvec = "box", []
    else:  # pragma: no cover - make_distribution refuses other spaces first
        raise APIUsageError(f"cannot export actions of {space}")
    norm = policy.obs_norm
    low = high = None
    if kind == "box":
        low = np.asarray(space.low, np.float32).reshape(-1)
        high = np.asarray(space.high, np.float32).reshape(-1)
    return ActorGraph(
        obs_shape=tuple(int(s) for s in policy.observation_space.shape),
        obs_scale=float(policy.obs_scale),
        norm_mean=None if norm is None else norm.mean.numpy().astype(np.float32).reshape(-1),
        norm_std=None if norm is None else norm.std.numpy().astype(np.float32).reshape(-1),
        norm_clip=None if norm is None else norm.clip,
        activation=config.activation,
        layers=layers,
        head_weight=arr(policy.head.weight[:n]),
        head_bias=arr(policy.head.bias[:n]),
        kind=kind,
        nvec=nvec,
        low=low,
        high=high,
        convs=convs,
        lstm=lstm,
    )


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)  # type: ignore[no-any-return]
    if name == "relu":
        return np.maximum(x, x.dtype.type(0))  # type: ignore[no-any-return]
    erf = np.vectorize(math.erf, otypes=[np.float64])  # gelu, the exact form (torch's default)
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype)  # type: ignore[no-any-return]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    one = x.dtype.type(1)
    return one / (one + np.exp(-x))  # type: ignore[no-any-return]


def conv2d(x: np.ndarray, conv: Conv, dtype: Any = np.float32) -> np.ndarray:
    """``x [B, C, H, W]`` convolved (cross-correlation, torch's convention) by ``conv``."""
    weight, bias = conv.weight.astype(dtype), conv.bias.astype(dtype)
    if conv.padding:
        p = conv.padding
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    k, s = weight.shape[-1], conv.stride
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    out = np.einsum("bchwij,ocij->bohw", windows, weight, optimize=True)
    return (out + bias[None, :, None, None]).astype(dtype)  # type: ignore[no-any-return]


def features(graph: ActorGraph, obs: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The encoder's output ``[B, width]`` (before any LSTM core)."""
    x = np.asarray(obs, np.float32).reshape(len(obs), -1) * np.float32(graph.obs_scale)
    if graph.norm_mean is not None:
        assert graph.norm_std is not None
        x = (x - graph.norm_mean) / graph.norm_std
        if graph.norm_clip is not None:
            x = np.clip(x, -graph.norm_clip, graph.norm_clip)
    x = x.astype(dtype)
    if graph.convs:
        x = x.reshape(len(obs), *graph.obs_shape)
        for conv in graph.convs:
            x = _activate(conv2d(x, conv, dtype), graph.activation)
        x = x.reshape(len(obs), -1)
    for weight, bias in graph.layers:
        x = _activate(x @ weight.astype(dtype).T + bias.astype(dtype), graph.activation)
    return x


def _head(graph: ActorGraph, x: np.ndarray) -> np.ndarray:
    dtype = x.dtype
    out = x @ graph.head_weight.astype(dtype).T + graph.head_bias.astype(dtype)
    return out.astype(np.float32)  # type: ignore[no-any-return]


def lstm_cell(
    cell: Lstm, x: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One step of ``cell``: ``(h', c')`` from input ``x [B, in]`` and state ``h, c [B, H]``."""
    dtype = x.dtype
    gates = (
        x @ cell.weight_ih.astype(dtype).T
        + cell.bias_ih.astype(dtype)
        + h.astype(dtype) @ cell.weight_hh.astype(dtype).T
        + cell.bias_hh.astype(dtype)
    )
    i, f, g, o = np.split(gates, 4, axis=-1)
    c_new = _sigmoid(f) * c.astype(dtype) + _sigmoid(i) * np.tanh(g)
    h_new = _sigmoid(o) * np.tanh(c_new)
    return h_new, c_new


def params(graph: ActorGraph, obs: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The actor head's outputs ``[B, num_params]`` for observations ``[B, *obs_shape]``
    (computed in ``dtype``: ``np.float16`` is how fp16 deployments are checked).

    Raises:
        APIUsageError: The graph is recurrent (use :func:`step`).
    """
    if graph.lstm is not None:
        raise APIUsageError("a recurrent graph's outputs depend on its state: use step()")
    return _head(graph, features(graph, obs, dtype))


def step(
    graph: ActorGraph,
    obs: np.ndarray,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One step of a recurrent graph: ``(head outputs [B, n], (h, c))`` (``None``: zeros)."""
    if graph.lstm is None:
        raise APIUsageError("step() is for recurrent graphs; use params()")
    x = features(graph, obs, dtype)
    if state is None:
        zeros = np.zeros((len(obs), graph.lstm.hidden_size), dtype)
        state = (zeros, zeros)
    h, c = lstm_cell(graph.lstm, x, *state)
    return _head(graph, h), (h, c)


def decode_actions(
    graph: ActorGraph, out: np.ndarray, action_mask: np.ndarray | None = None
) -> np.ndarray:
    """Deterministic actions of head outputs: argmax of (legal) logits, or the clipped mean."""
    if graph.kind == "box":
        assert graph.low is not None and graph.high is not None
        return np.clip(out, graph.low, graph.high)  # type: ignore[no-any-return]
    if action_mask is not None:
        out = np.where(np.asarray(action_mask, bool), out, -np.inf)
    parts, start = [], 0
    for n in graph.nvec:
        parts.append(out[:, start : start + n].argmax(-1))
        start += n
    actions = np.stack(parts, -1)
    return actions[:, 0] if graph.kind == "discrete" else actions  # type: ignore[no-any-return]


def act(graph: ActorGraph, obs: np.ndarray, action_mask: np.ndarray | None = None) -> np.ndarray:
    """Deterministic actions of a feed-forward graph: argmax of (legal) logits per component,
    or the clipped mean."""
    return decode_actions(graph, params(graph, obs), action_mask)
