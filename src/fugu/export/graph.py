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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError

__all__ = ["ActorGraph", "act", "actor_graph", "params"]


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

    @property
    def obs_size(self) -> int:
        """Flat observation size."""
        return int(np.prod(self.obs_shape))

    @property
    def num_params(self) -> int:
        """Outputs of the actor head (logits, or the Gaussian mean)."""
        return int(self.head_bias.shape[0])


def actor_graph(policy: Any) -> ActorGraph:
    """The acting path of a feed-forward MLP :class:`~fugu.models.Policy` as arrays.

    Raises:
        APIUsageError: The policy is recurrent or convolutional (not exported yet).
    """
    config = policy.config
    if policy.is_recurrent or config.kind != "mlp" or policy._mlp_layers is None:
        raise APIUsageError(
            f"export supports feed-forward MLP policies; this one is {config.kind!r} "
            "(CNN and LSTM exports are not implemented yet)"
        )

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float32).copy()

    layers = [(arr(layer.weight), arr(layer.bias)) for layer in policy._mlp_layers]
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
    )


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    erf = np.vectorize(math.erf, otypes=[np.float64])  # gelu, the exact form (torch's default)
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)  # type: ignore[no-any-return]


def params(graph: ActorGraph, obs: np.ndarray) -> np.ndarray:
    """The actor head's outputs ``[B, num_params]`` for observations ``[B, *obs_shape]``."""
    x = np.asarray(obs, np.float32).reshape(len(obs), -1) * np.float32(graph.obs_scale)
    if graph.norm_mean is not None:
        assert graph.norm_std is not None
        x = (x - graph.norm_mean) / graph.norm_std
        if graph.norm_clip is not None:
            x = np.clip(x, -graph.norm_clip, graph.norm_clip)
    for weight, bias in graph.layers:
        x = _activate(x @ weight.T + bias, graph.activation)
    return (x @ graph.head_weight.T + graph.head_bias).astype(np.float32)  # type: ignore[no-any-return]


def act(graph: ActorGraph, obs: np.ndarray, action_mask: np.ndarray | None = None) -> np.ndarray:
    """Deterministic actions: argmax of (legal) logits per component, or the clipped mean."""
    out = params(graph, obs)
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
