"""LSTM and CNN policies export with parity: ONNX (state in, state out), numpy, pure Python."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError
from fugu.export import actor_graph, export
from fugu.export.codegen import numpy_source, python_source
from fugu.export.graph import step
from fugu.models import PolicyConfig, make_policy

torch.set_num_threads(1)


@pytest.mark.parametrize("fmt", ["onnx", "numpy", "python"])
def test_lstm_exports_match_torch_over_recorded_sequences(deep_runs, tmp_path, fmt):
    pytest.importorskip("onnxruntime")
    result = export(deep_runs("lstm"), fmt, tmp_path / f"p.{'onnx' if fmt == 'onnx' else 'py'}",
                    num_samples=160, recorded_steps=120)  # fmt: skip
    assert result.architecture == "mlp+lstm"
    assert result.num_observations == 160 + 120  # one recorded row: cartpole's single env
    assert result.max_abs_error <= 1e-5 and result.action_agreement == 1.0


@pytest.mark.parametrize("fmt", ["onnx", "numpy"])
def test_cnn_exports_match_torch_on_pixels(deep_runs, tmp_path, fmt):
    pytest.importorskip("onnxruntime")
    result = export(deep_runs("cnn"), fmt, tmp_path / f"p.{'onnx' if fmt == 'onnx' else 'py'}",
                    num_samples=64, recorded_steps=32)  # fmt: skip
    assert result.architecture == "cnn"
    assert result.max_abs_error <= 1e-5 and result.action_agreement == 1.0


def test_cnn_refuses_the_targets_it_cannot_run(deep_runs, tmp_path):
    for fmt in ("python", "c", "micropython"):
        with pytest.raises(APIUsageError, match="cnn policy exports to onnx, numpy"):
            export(deep_runs("cnn"), fmt, tmp_path / "p", num_samples=4, recorded_steps=2)


def _carry(policy, obs):
    """Torch's head outputs stepping ``obs [T, B, ...]`` with the state carried."""
    state, outs = None, []
    with torch.inference_mode():
        for t in range(len(obs)):
            out, _, state = policy.forward_eval(torch.from_numpy(obs[t]), state)
            outs.append(out.numpy())
    return np.stack(outs)


@pytest.mark.parametrize("shape", [(5,), (2, 10, 10)])
def test_state_is_carried_by_the_numpy_and_python_runtimes(shape):
    obs_space = spaces.Box(0.0, 1.0, shape, np.float32)
    config = PolicyConfig(kind="lstm", hidden_size=8, cnn_channels=(4, 4, 4))
    policy = make_policy(obs_space, spaces.Discrete(3), config).eval()
    with torch.no_grad():  # weights that make the state matter
        policy.lstm.weight_hh.mul_(8.0)
        policy.head.weight.mul_(100.0)
    graph = actor_graph(policy)
    obs = np.random.default_rng(1).uniform(0, 1, (12, 3, *shape)).astype(np.float32)
    want = _carry(policy, obs)
    # the state matters: the last step differs from the same observations fed from zeros
    fresh, _ = step(graph, obs[-1])
    assert np.abs(fresh - want[-1]).max() > 1e-3
    ns: dict = {}
    exec(numpy_source(graph), ns)
    state, got = None, []
    for t in range(len(obs)):
        out, state = ns["step_params"](obs[t], state)
        got.append(out)
    assert np.abs(np.stack(got) - want).max() <= 1e-5
    actions, _ = ns["step"](obs[0], ns["initial_state"](3))
    assert actions.shape == (3,)
    if len(shape) == 1:
        py: dict = {}
        exec(python_source(graph), py)
        state, rows = py["initial_state"](), []
        for t in range(len(obs)):
            out, state = py["step_params"](obs[t, 0].tolist(), state)
            rows.append(out)
        assert np.abs(np.array(rows) - want[:, 0]).max() <= 1e-5
        with pytest.raises(TypeError, match="step_params"):
            py["act"](obs[0, 0].tolist())


def test_onnx_graph_takes_and_returns_the_state(tmp_path):
    onnx = pytest.importorskip("onnx")
    from fugu.export.onnx import OnnxPolicy, export_onnx

    policy = make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2),
                         PolicyConfig(kind="lstm", hidden_size=6)).eval()  # fmt: skip
    path = export_onnx(actor_graph(policy), tmp_path / "p.onnx")
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["obs", "h", "c"]
    assert [o.name for o in model.graph.output] == ["actions", "params", "h_out", "c_out"]
    assert "LSTM" not in {n.op_type for n in model.graph.node}  # written as gates
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    session = OnnxPolicy(path)
    _, _, state = session.act(obs)
    _, out, _ = session.act(obs, state=state)
    with torch.inference_mode():
        _, _, s = policy.forward_eval(torch.from_numpy(obs))
        want, _, _ = policy.forward_eval(torch.from_numpy(obs), s)
    assert np.abs(out - want.numpy()).max() <= 1e-5
