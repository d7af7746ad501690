"""The TensorRT-ready ONNX profile: static shapes, TensorRT's ops only, fp16 ranges checked."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.cli.main import main
from fugu.core.errors import APIUsageError, MissingDependencyError
from fugu.export import actor_graph, export
from fugu.export.onnx import export_onnx
from fugu.export.tensorrt import (
    FP16_MAX,
    TENSORRT_OPS,
    TENSORRT_OPSET,
    build_engine,
    check_tensorrt,
    fp16_parity,
)
from fugu.models import PolicyConfig, make_policy

torch.set_num_threads(1)
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

_POLICIES = {
    "mlp-tanh": ((6,), spaces.Discrete(3), PolicyConfig(hidden_size=16)),
    "mlp-gelu-norm": ((6,), spaces.Box(-2, 2, (2,)),
                      PolicyConfig(hidden_size=16, activation="gelu", norm_obs=True)),
    "multi-relu": ((6,), spaces.MultiDiscrete([3, 4]),
                   PolicyConfig(hidden_size=16, activation="relu")),
    "cnn": ((1, 12, 12), spaces.Discrete(3), PolicyConfig(kind="cnn", hidden_size=16,
                                                         cnn_channels=(4, 4, 4))),
    "lstm": ((6,), spaces.Discrete(3), PolicyConfig(kind="lstm", hidden_size=16)),
}  # fmt: skip


def _graph(name):
    shape, action_space, config = _POLICIES[name]
    policy = make_policy(spaces.Box(-1.0, 1.0, shape, np.float32), action_space, config).eval()
    return actor_graph(policy)


@pytest.mark.parametrize("name", sorted(_POLICIES))
@pytest.mark.parametrize("with_mask", [False, True])
def test_every_graph_fugu_emits_is_tensorrt_ready(tmp_path, name, with_mask):
    graph = _graph(name)
    path = export_onnx(graph, tmp_path / "p.onnx", dynamic_batch=False, batch_size=4,
                       with_mask=with_mask, opset=TENSORRT_OPSET)  # fmt: skip
    obs = np.random.default_rng(0).uniform(-1, 1, (10, *graph.obs_shape)).astype(np.float32)
    starts = None
    if graph.is_recurrent:
        obs, starts = obs.reshape(5, 2, *graph.obs_shape), np.eye(5, 2, dtype=bool)
    report = check_tensorrt(path, graph, obs, starts)
    assert report.unsupported_ops == [] and set(report.op_types) <= TENSORRT_OPS
    assert report.dynamic_inputs == [] and report.batch_size == 4
    assert report.opset == TENSORRT_OPSET
    assert report.is_ready and report.fp16_safe
    assert 0 < report.max_abs_weight < FP16_MAX and 0 < report.max_abs_activation < FP16_MAX
    assert report.fp16_max_abs_error < 1e-2 and report.fp16_action_agreement >= 0.9
    model = onnx.load(str(path))
    for value in [*model.graph.input, *model.graph.output]:
        assert all(d.HasField("dim_value") for d in value.type.tensor_type.shape.dim)


def test_dynamic_batch_and_foreign_ops_are_flagged(tmp_path):
    graph = _graph("mlp-tanh")
    obs = np.zeros((4, 6), np.float32)
    path = export_onnx(graph, tmp_path / "dynamic.onnx", dynamic_batch=True)
    report = check_tensorrt(path, graph, obs)
    assert set(report.dynamic_inputs) == {"obs", "actions", "params"} and not report.is_ready
    model = onnx.load(str(path))  # the same file with an op outside the list (a NonZero)
    model.graph.node.append(onnx.helper.make_node("NonZero", ["params"], ["nz"]))
    onnx.save(model, str(tmp_path / "foreign.onnx"))
    report = check_tensorrt(tmp_path / "foreign.onnx", graph, obs)
    assert report.unsupported_ops == ["NonZero"] and not report.is_ready


def test_values_beyond_fp16_are_caught(tmp_path):
    graph = _graph("mlp-tanh")
    graph.head_weight = graph.head_weight * np.float32(1e8)  # logits far past 65504
    path = export_onnx(graph, tmp_path / "big.onnx", dynamic_batch=False, batch_size=2)
    obs = np.random.default_rng(0).uniform(-1, 1, (8, 6)).astype(np.float32)
    report = check_tensorrt(path, graph, obs)
    assert report.max_abs_weight > FP16_MAX and report.max_abs_activation > FP16_MAX
    assert report.fp16_max_abs_error == float("inf")  # the fp16 run overflows
    assert not report.fp16_safe and not report.is_ready


def test_fp16_run_measures_rounding():
    graph = _graph("mlp-tanh")
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 6)).astype(np.float32)
    error, agreement = fp16_parity(graph, obs)
    assert 0 < error < 1e-2  # half precision rounds: not zero, but small
    assert agreement >= 0.9


def test_export_profile_end_to_end(deep_runs, tmp_path, capsys):
    result = export(deep_runs("lstm"), "onnx", tmp_path / "trt.onnx", num_samples=40,
                    recorded_steps=30, profile="tensorrt", batch_size=8)  # fmt: skip
    assert result.profile == "tensorrt" and result.action_agreement == 1.0
    assert result.max_abs_error <= 1e-5
    assert result.tensorrt is not None and result.tensorrt["is_ready"]
    assert result.tensorrt["batch_size"] == 8
    argv = ["export", str(deep_runs("lstm")), "--profile", "tensorrt", "--batch-size", "2",
            "--output", str(tmp_path / "cli.onnx"), "--samples", "16"]  # fmt: skip
    assert main(argv) == 0
    assert "tensorrt: ready; opset 17, batch 2" in capsys.readouterr().out
    with pytest.raises(APIUsageError, match="ONNX profile"):
        export(deep_runs("lstm"), "numpy", tmp_path / "x.py", profile="tensorrt")
    with pytest.raises(APIUsageError, match="profile must be"):
        export(deep_runs("lstm"), "onnx", tmp_path / "x.onnx", profile="openvino")


def test_engine_build_without_tensorrt_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not importable, even where installed
    path = export_onnx(_graph("mlp-tanh"), tmp_path / "p.onnx", dynamic_batch=False)
    with pytest.raises(MissingDependencyError, match="pip install tensorrt"):
        build_engine(path, tmp_path / "p.engine")
    assert not (tmp_path / "p.engine").exists()


def test_cli_engine_flag_needs_the_profile_and_tensorrt(deep_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    base = ["export", str(deep_runs("lstm")), "--output", str(tmp_path / "p.onnx"),
            "--samples", "8", "--engine", str(tmp_path / "p.engine")]  # fmt: skip
    assert main(base) == 2
    assert "--engine needs --profile tensorrt" in capsys.readouterr().err
    assert main([*base, "--profile", "tensorrt"]) == 2
    assert "pip install tensorrt" in capsys.readouterr().err
    assert (tmp_path / "p.onnx").is_file() and not (tmp_path / "p.engine").exists()
