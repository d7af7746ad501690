"""ONNX export of an :class:`~fugu.export.graph.ActorGraph`, and an onnxruntime helper.

The graph is rebuilt from standard torch ops (``Linear``, ``tanh``/``relu``/``gelu``,
``argmax``, ``clamp``) and written with the TorchScript-based exporter at opset 17, a version
every current runtime reads. Inputs: ``obs [batch, *obs_shape]`` float32 and, for discrete
actions with ``with_mask``, ``action_mask [batch, num_logits]`` bool; outputs: ``actions`` and
``params`` (the actor head's outputs). ``dynamic_batch=False`` fixes the batch size (the shape
TensorRT-style builders prefer).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fugu.core.errors import missing_dependency
from fugu.export.graph import ActorGraph

__all__ = ["OPSET", "ActorModule", "export_onnx", "onnx_act"]

OPSET = 17
"""ONNX opset of exported graphs."""


class ActorModule(nn.Module):
    """The deterministic actor of an :class:`ActorGraph` in standard torch ops."""

    norm_mean: Tensor
    norm_std: Tensor
    low: Tensor
    high: Tensor

    def __init__(self, graph: ActorGraph) -> None:
        super().__init__()
        self.kind, self.nvec = graph.kind, list(graph.nvec)
        self.obs_scale = float(graph.obs_scale)
        self.layers = nn.ModuleList()
        for weight, bias in graph.layers:
            layer = nn.Linear(weight.shape[1], weight.shape[0])
            layer.weight.data = torch.from_numpy(weight.copy())
            layer.bias.data = torch.from_numpy(bias.copy())
            self.layers.append(layer)
        self.head = nn.Linear(graph.head_weight.shape[1], graph.head_weight.shape[0])
        self.head.weight.data = torch.from_numpy(graph.head_weight.copy())
        self.head.bias.data = torch.from_numpy(graph.head_bias.copy())
        self.activation = {"tanh": torch.tanh, "relu": torch.relu}.get(
            graph.activation, nn.functional.gelu
        )
        self.norm = graph.norm_mean is not None
        self.norm_clip = graph.norm_clip
        mean = np.zeros(1, np.float32) if graph.norm_mean is None else graph.norm_mean
        std = np.ones(1, np.float32) if graph.norm_std is None else graph.norm_std
        self.register_buffer("norm_mean", torch.from_numpy(mean.copy()))
        self.register_buffer("norm_std", torch.from_numpy(std.copy()))
        low = np.zeros(1, np.float32) if graph.low is None else graph.low
        high = np.zeros(1, np.float32) if graph.high is None else graph.high
        self.register_buffer("low", torch.from_numpy(low.copy()))
        self.register_buffer("high", torch.from_numpy(high.copy()))

    def forward(self, obs: Tensor, action_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(actions, params)`` for ``obs [B, *obs_shape]``."""
        x = obs.reshape(obs.shape[0], -1).float() * self.obs_scale
        if self.norm:
            x = (x - self.norm_mean) / self.norm_std
            if self.norm_clip is not None:
                x = torch.clamp(x, -self.norm_clip, self.norm_clip)
        for layer in self.layers:
            x = self.activation(layer(x))
        out = self.head(x)
        if self.kind == "box":
            return torch.clamp(out, self.low, self.high), out
        logits = out if action_mask is None else out.masked_fill(~action_mask, float("-inf"))
        parts, start = [], 0
        for n in self.nvec:
            parts.append(torch.argmax(logits[:, start : start + n], dim=-1))
            start += n
        actions = torch.stack(parts, dim=-1)
        return (actions[:, 0] if self.kind == "discrete" else actions), out


def export_onnx(
    graph: ActorGraph,
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    batch_size: int = 1,
    with_mask: bool = False,
) -> Path:
    """Write the actor as an ONNX file (checked by ``onnx.checker``); returns the path."""
    try:
        import onnx
    except ImportError as error:
        raise missing_dependency("onnx", "export") from error
    module = ActorModule(graph).eval()
    obs = torch.zeros((batch_size, *graph.obs_shape), dtype=torch.float32)
    inputs: tuple[Any, ...] = (obs,)
    names = ["obs"]
    if with_mask and graph.kind != "box":
        inputs = (obs, torch.ones((batch_size, graph.num_params), dtype=torch.bool))
        names.append("action_mask")
    axes = {name: {0: "batch"} for name in [*names, "actions", "params"]} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notices about its own deprecation
        torch.onnx.export(
            module,
            inputs,
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=["actions", "params"],
            dynamic_axes=axes,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def onnx_act(
    path: str | Path, obs: np.ndarray, action_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run an exported file with onnxruntime: ``(actions, params)``."""
    try:
        import onnxruntime
    except ImportError as error:
        raise missing_dependency("onnxruntime", "export") from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"obs": np.asarray(obs, np.float32)}
    if action_mask is not None and "action_mask" in {i.name for i in session.get_inputs()}:
        feed["action_mask"] = np.asarray(action_mask, bool)
    actions, out = session.run(["actions", "params"], feed)
    return actions, out
