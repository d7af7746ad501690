"""ONNX export of an :class:`~fugu.export.graph.ActorGraph`, and an onnxruntime helper.

The graph is rebuilt from standard torch ops (``Conv2d``, ``Linear``, ``tanh``/``relu``/
``gelu``, ``sigmoid``, ``argmax``, ``clamp``) and written with the TorchScript-based exporter at
opset 17, a version every current runtime reads. Inputs: ``obs [batch, *obs_shape]`` float32,
for recurrent policies the state ``h`` and ``c`` ``[batch, hidden]`` float32 (zeros at an
episode's start), and, for discrete actions with ``with_mask``, ``action_mask [batch,
num_logits]`` bool; outputs: ``actions``, ``params`` (the actor head's outputs) and, for
recurrent policies, the next state ``h_out`` and ``c_out``. ``dynamic_batch=False`` fixes the
batch size (the shape TensorRT-style builders prefer). The LSTM cell is written as two matrix
products and its gates (not ONNX's ``LSTM`` op), so every runtime reads it the same way.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fugu.core.errors import APIUsageError, missing_dependency
from fugu.export.graph import ActorGraph

__all__ = ["OPSET", "ActorModule", "OnnxPolicy", "export_onnx", "onnx_act"]

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
        self.obs_shape = tuple(graph.obs_shape)
        self.convs = nn.ModuleList()
        for conv in graph.convs:
            out_ch, in_ch, k, _ = conv.weight.shape
            module = nn.Conv2d(in_ch, out_ch, k, conv.stride, conv.padding)
            module.weight.data = torch.from_numpy(conv.weight.copy())
            module.bias = nn.Parameter(torch.from_numpy(conv.bias.copy()))
            self.convs.append(module)
        self.lstm_ih: nn.Linear | None = None
        self.lstm_hh: nn.Linear | None = None
        if graph.lstm is not None:
            cell = graph.lstm
            self.lstm_ih = nn.Linear(cell.weight_ih.shape[1], cell.weight_ih.shape[0])
            self.lstm_ih.weight.data = torch.from_numpy(cell.weight_ih.copy())
            self.lstm_ih.bias.data = torch.from_numpy((cell.bias_ih + cell.bias_hh).copy())
            self.lstm_hh = nn.Linear(cell.weight_hh.shape[1], cell.weight_hh.shape[0], bias=False)
            self.lstm_hh.weight.data = torch.from_numpy(cell.weight_hh.copy())
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

    def features(self, obs: Tensor) -> Tensor:
        """The encoder's output for ``obs [B, *obs_shape]``."""
        x = obs.reshape(obs.shape[0], -1).float() * self.obs_scale
        if self.norm:
            x = (x - self.norm_mean) / self.norm_std
            if self.norm_clip is not None:
                x = torch.clamp(x, -self.norm_clip, self.norm_clip)
        if len(self.convs):
            x = x.reshape(obs.shape[0], *self.obs_shape)
            for conv in self.convs:
                x = self.activation(conv(x))
            x = x.reshape(obs.shape[0], -1)
        for layer in self.layers:
            x = self.activation(layer(x))
        return x

    def cell(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One LSTM step: ``(h', c')``."""
        assert self.lstm_ih is not None and self.lstm_hh is not None
        gates = self.lstm_ih(x) + self.lstm_hh(h)
        i, f, g, o = torch.chunk(gates, 4, dim=-1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_new), c_new

    def forward(self, obs: Tensor, action_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(actions, params)`` for ``obs [B, *obs_shape]`` (feed-forward graphs)."""
        return self.decode(self.head(self.features(obs)), action_mask)

    def decode(self, out: Tensor, action_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(actions, params)`` of the head's outputs."""
        if self.kind == "box":
            return torch.clamp(out, self.low, self.high), out
        logits = out if action_mask is None else out.masked_fill(~action_mask, float("-inf"))
        parts, start = [], 0
        for n in self.nvec:
            parts.append(torch.argmax(logits[:, start : start + n], dim=-1))
            start += n
        actions = torch.stack(parts, dim=-1)
        return (actions[:, 0] if self.kind == "discrete" else actions), out


class _RecurrentActor(nn.Module):
    """``(obs, h, c[, action_mask]) -> (actions, params, h_out, c_out)``: the export signature
    of a recurrent :class:`ActorModule`."""

    def __init__(self, actor: ActorModule) -> None:
        super().__init__()
        self.actor = actor

    def forward(
        self, obs: Tensor, h: Tensor, c: Tensor, action_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h_new, c_new = self.actor.cell(self.actor.features(obs), h, c)
        actions, out = self.actor.decode(self.actor.head(h_new), action_mask)
        return actions, out, h_new, c_new


def export_onnx(
    graph: ActorGraph,
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    batch_size: int = 1,
    with_mask: bool = False,
    opset: int | None = None,
    exporter: str = "legacy",
) -> Path:
    """Write the actor as an ONNX file (checked by ``onnx.checker``); returns the path.

    Args:
        graph: The actor.
        path: The file to write.
        dynamic_batch: A symbolic batch dimension (else ``batch_size`` rows, fixed).
        batch_size: Rows of the example input (the batch, when fixed).
        with_mask: Add the ``action_mask`` input (discrete actions).
        opset: ONNX opset (default :data:`OPSET`).
        exporter: ``"legacy"`` (TorchScript tracing: fast to start, the default) or
            ``"dynamo"`` (``torch.export``; needs ``onnxscript``). Both give the same outputs;
            ``benchmarks/export.py --exporters`` measures their cold export time and size.
    """
    if exporter not in ("legacy", "dynamo"):
        raise APIUsageError(f"exporter must be 'legacy' or 'dynamo', got {exporter!r}")
    try:
        import onnx
    except ImportError as error:
        raise missing_dependency("onnx", "export") from error
    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401
        except ImportError as error:
            raise missing_dependency("onnxscript", "export") from error
    module: nn.Module = ActorModule(graph).eval()
    obs = torch.zeros((batch_size, *graph.obs_shape), dtype=torch.float32)
    inputs: tuple[Any, ...] = (obs,)
    names, outputs = ["obs"], ["actions", "params"]
    if graph.lstm is not None:
        module = _RecurrentActor(module).eval()  # type: ignore[arg-type]
        state = torch.zeros((batch_size, graph.lstm.hidden_size), dtype=torch.float32)
        inputs, names, outputs = (
            (obs, state, state),
            [*names, "h", "c"],
            [*outputs, "h_out", "c_out"],
        )
    if with_mask and graph.kind != "box":
        inputs = (*inputs, torch.ones((batch_size, graph.num_params), dtype=torch.bool))
        names.append("action_mask")
    axes = {name: {0: "batch"} for name in [*names, *outputs]} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notices about its own deprecation
        torch.onnx.export(
            module,
            inputs,
            buffer,  # type: ignore[arg-type]
            dynamo=exporter == "dynamo",
            opset_version=OPSET if opset is None else opset,
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
        )
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


class OnnxPolicy:
    """An exported file in an onnxruntime session, fed in slices of its static batch (if any).

    ``act(obs, action_mask=None, state=None)`` returns ``(actions, params)`` for feed-forward
    graphs and ``(actions, params, (h, c))`` for recurrent ones (``state=None``: zeros).
    """

    def __init__(self, path: str | Path) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise missing_dependency("onnxruntime", "export") from error
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self.input_names = set(shapes)
        batch = shapes["obs"][0]
        self.batch_size: int | None = batch if isinstance(batch, int) else None
        self.is_recurrent = "h" in shapes
        self.hidden_size = int(shapes["h"][1]) if self.is_recurrent else 0
        self.outputs = [o.name for o in self.session.get_outputs()]
        mask = shapes.get("action_mask")
        self.mask_size = int(mask[1]) if mask else 0

    def _run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(feed["obs"])
        size = self.batch_size
        if size is None or size == rows:
            return list(self.session.run(self.outputs, feed))
        parts: list[list[np.ndarray]] = []
        for start in range(0, rows, size):
            chunk = {}
            for name, value in feed.items():
                piece = value[start : start + size]
                if len(piece) < size:  # pad the last slice; its extra rows are dropped
                    pad = np.zeros((size - len(piece), *piece.shape[1:]), piece.dtype)
                    if name == "action_mask":
                        pad[:] = True
                    piece = np.concatenate([piece, pad])
                chunk[name] = piece
            got = self.session.run(self.outputs, chunk)
            parts.append([g[: min(size, rows - start)] for g in got])
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self.outputs))]

    def act(
        self,
        obs: np.ndarray,
        action_mask: np.ndarray | None = None,
        state: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Any:
        """Run the graph on ``obs [B, *obs_shape]`` (see the class)."""
        feed = {"obs": np.asarray(obs, np.float32)}
        if self.is_recurrent:
            if state is None:
                zeros = np.zeros((len(obs), self.hidden_size), np.float32)
                state = (zeros, zeros)
            feed["h"], feed["c"] = (np.asarray(s, np.float32) for s in state)
        if "action_mask" in self.input_names:
            if action_mask is None:
                action_mask = np.ones((len(obs), self.mask_size), bool)
            feed["action_mask"] = np.asarray(action_mask, bool)
        got = self._run(feed)
        if self.is_recurrent:
            return got[0], got[1], (got[2], got[3])
        return got[0], got[1]


def onnx_act(
    path: str | Path, obs: np.ndarray, action_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run an exported feed-forward file with onnxruntime: ``(actions, params)``."""
    return OnnxPolicy(path).act(obs, action_mask)  # type: ignore[no-any-return]
