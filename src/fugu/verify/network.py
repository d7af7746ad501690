"""A policy's actor as a plain feed-forward network: what every verification engine reads.

:func:`from_actor_graph` turns the acting path of a trained MLP policy
(:class:`fugu.export.graph.ActorGraph`) into a :class:`Network`: affine layers with an
activation between them and a linear head. The observation scale and the running
normalisation are folded into the first layer; a normalisation clip ``clip(z, -k, k)`` becomes
one extra ReLU layer (``relu(z + k) - relu(z - k) - k``), so a ReLU policy stays a pure ReLU
network, which the exact engines (z3, Marabou) need. Weights are kept as float32 values (in
float64 arrays) so every engine reads the same numbers.

Example:
    >>> net = Network([(np.eye(2), np.zeros(2), "relu"), (np.array([[1.0, -1.0]]), np.zeros(1),
    ...                "linear")])
    >>> net.forward(np.array([[2.0, 1.0], [-1.0, 3.0]])).tolist()
    [[1.0], [-3.0]]
    >>> net.num_inputs, net.num_outputs, net.is_piecewise_linear
    (2, 1, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["ACTIVATIONS", "Network", "from_actor_graph", "from_policy"]

ACTIVATIONS = ("relu", "tanh", "linear")
"""Activations a :class:`Network` layer may have."""


def _f32(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float64)


@dataclass
class Network:
    """Layers ``(weight [out, in], bias [out], activation)``; the last is the linear head.

    Attributes:
        layers: The layers, first to last.
        kind: ``"discrete"`` (outputs are logits) or ``"box"`` (outputs are action means).
    """

    layers: list[tuple[np.ndarray, np.ndarray, str]]
    kind: str = "discrete"

    def __post_init__(self) -> None:
        if not self.layers:
            raise APIUsageError("a network needs at least one layer")
        width = None
        fixed = []
        for k, (weight, bias, activation) in enumerate(self.layers):
            weight, bias = _f32(weight), _f32(bias)
            if activation not in ACTIVATIONS:
                raise APIUsageError(
                    f"layer {k}: activation {activation!r} is not one of {ACTIVATIONS} "
                    "(verification supports relu and tanh policies)"
                )
            if weight.ndim != 2 or bias.shape != (weight.shape[0],):
                raise APIUsageError(f"layer {k}: weight {weight.shape} and bias {bias.shape}")
            if width is not None and weight.shape[1] != width:
                raise APIUsageError(f"layer {k} takes {weight.shape[1]} inputs, gets {width}")
            width = weight.shape[0]
            fixed.append((weight, bias, activation))
        self.layers = fixed

    @property
    def num_inputs(self) -> int:
        """Input (observation) size."""
        return int(self.layers[0][0].shape[1])

    @property
    def num_outputs(self) -> int:
        """Output (head) size."""
        return int(self.layers[-1][0].shape[0])

    @property
    def is_piecewise_linear(self) -> bool:
        """Only ReLU and linear layers: what z3 and Marabou decide exactly."""
        return all(activation != "tanh" for _, _, activation in self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """float64 outputs ``[B, num_outputs]`` for inputs ``[B, num_inputs]``."""
        h = np.asarray(x, dtype=np.float64)
        for weight, bias, activation in self.layers:
            h = h @ weight.T + bias
            if activation == "relu":
                h = np.maximum(h, 0.0)
            elif activation == "tanh":
                h = np.tanh(h)
        return h


def from_actor_graph(graph: Any) -> Network:
    """The :class:`Network` of an :class:`~fugu.export.graph.ActorGraph` (see the module)."""
    if not getattr(graph, "is_mlp", True):
        raise APIUsageError(f"verification supports MLP policies, not {graph.architecture!r}")
    if graph.kind not in ("discrete", "box"):
        raise APIUsageError(f"verification supports Discrete and Box policies, not {graph.kind}")
    if graph.activation not in ("relu", "tanh"):
        raise APIUsageError(
            f"verification supports relu and tanh policies, this one uses {graph.activation!r}"
        )
    size = graph.obs_size
    scale = np.full(size, float(graph.obs_scale))
    shift = np.zeros(size)
    if graph.norm_mean is not None:
        std = np.asarray(graph.norm_std, np.float64)
        scale = scale / std
        shift = -np.asarray(graph.norm_mean, np.float64) / std
    layers: list[tuple[np.ndarray, np.ndarray, str]] = []
    weights = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in graph.layers]
    weights.append((np.asarray(graph.head_weight, np.float64), np.asarray(graph.head_bias)))
    first_w, first_b = weights[0]
    if graph.norm_mean is not None and graph.norm_clip is not None:
        k = float(graph.norm_clip)
        eye = np.diag(scale)
        layers.append((np.vstack([eye, eye]), np.concatenate([shift + k, shift - k]), "relu"))
        # clip(z) = relu(z + k) - relu(z - k) - k feeds the first layer
        first_b = first_b - k * first_w.sum(axis=1)
        first_w = np.hstack([first_w, -first_w])
    else:
        first_b = first_b + first_w @ shift
        first_w = first_w * scale
    weights[0] = (first_w, first_b)
    for k, (weight, bias) in enumerate(weights):
        activation = "linear" if k == len(weights) - 1 else graph.activation
        layers.append((weight, bias, activation))
    return Network(layers, "box" if graph.kind == "box" else "discrete")


def from_policy(policy: Any) -> Network:
    """The :class:`Network` of a feed-forward MLP :class:`~fugu.models.Policy`."""
    from fugu.export.graph import actor_graph

    return from_actor_graph(actor_graph(policy))
