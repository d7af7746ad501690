"""The C export: host-gcc parity, int8 against its numpy mirror, and Cortex-M0+ firmware
under QEMU (size, parity, instruction count) where the cross toolchain is installed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.cli.main import main
from fugu.export import act, actor_graph, export
from fugu.export.cbuild import (
    HostPolicy,
    build_host_library,
    firmware_size,
    instructions_per_inference,
    missing_tools,
)
from fugu.export.ccode import c_source, quantize, quantized_params
from fugu.export.graph import params
from fugu.models import PolicyConfig, make_policy

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (Debian: gcc)")
_ARM = missing_tools("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
needs_arm = pytest.mark.skipif(
    bool(_ARM), reason=f"needs the Debian packages {' '.join(_ARM)} (make install sets them up)"
)


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "cartpole"
    args = ["train", "cartpole-v1", "--run-dir", str(run), "--quiet", "--env.num-envs", "8",
            "--train.num-steps", "16", "--train.total-timesteps", "20000",
            "--logging.tensorboard", "false"]  # fmt: skip
    assert main(args) == 0
    return run


def graph_of(action_space, activation="tanh", hidden=64, seed=0):
    torch.manual_seed(seed)
    config = PolicyConfig(hidden_size=hidden, activation=activation)
    return actor_graph(make_policy(spaces.Box(-1, 1, (4,)), action_space, config))


def host(graph, quant=None, directory=None):
    size = graph.num_params if graph.kind == "box" else len(graph.nvec)
    library = build_host_library(c_source(graph, quant), directory)
    return HostPolicy(library, graph.obs_size, graph.num_params, size)


OBS = np.random.default_rng(1).uniform(-1, 1, (500, 4)).astype(np.float32)


@needs_gcc
@pytest.mark.parametrize(
    ("space", "activation"),
    [
        (spaces.Discrete(3), "tanh"),
        (spaces.MultiDiscrete([2, 3]), "relu"),
        (spaces.Box(-0.5, 0.5, (2,)), "gelu"),
    ],
)
def test_float_c_matches_the_numpy_reference(tmp_path, space, activation):
    graph = graph_of(space, activation)
    actions, head = host(graph, directory=tmp_path)(OBS)
    assert np.abs(head - params(graph, OBS)).max() <= 1e-5
    want = np.asarray(act(graph, OBS), np.float32).reshape(len(OBS), -1)
    np.testing.assert_allclose(actions, want, atol=1e-6)


@needs_gcc
def test_c_masks_choose_only_legal_actions(tmp_path):
    graph = graph_of(spaces.Discrete(4))
    mask = np.zeros((len(OBS), 4), bool)
    mask[np.arange(len(OBS)), np.arange(len(OBS)) % 4] = True
    actions, _ = host(graph, directory=tmp_path)(OBS, mask)
    assert (actions[:, 0] == np.arange(len(OBS)) % 4).all()


@needs_gcc
def test_int8_c_computes_exactly_its_numpy_mirror(tmp_path):
    graph = graph_of(spaces.Discrete(3))
    quant = quantize(graph, OBS[:100])
    assert all(w.dtype == np.int8 and np.abs(w).max() == 127 for w in quant.weights)
    _, head = host(graph, quant, tmp_path)(OBS)
    np.testing.assert_allclose(head, quantized_params(graph, quant, OBS), atol=1e-5)
    # and stays close to the float policy it quantises
    assert np.abs(head - params(graph, OBS)).max() < 0.05


@needs_gcc
def test_export_c_int8_agrees_with_a_trained_policy(cartpole_run, tmp_path):
    result = export(cartpole_run, "c-int8", tmp_path / "policy.c", num_samples=500)
    # a briefly trained policy is nearly indifferent in some states, where int8 rounding flips
    # the arg-max; the figure for a solved policy is in docs/export.md
    assert result.action_agreement >= 0.9
    assert result.max_abs_error < 0.5
    if _ARM:
        assert any("Cortex-M0+" in note for note in result.notes)


@needs_gcc
@needs_arm
def test_cortex_m0plus_firmware_matches_torch_and_fits(cartpole_run, tmp_path, capsys):
    argv = ["export", str(cartpole_run), "--format", "c", "--output", str(tmp_path / "p.c"),
            "--samples", "100"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cortex-m0+:" in out and "action agreement 100.00%" in out
    result = export(cartpole_run, "c", tmp_path / "policy.c", num_samples=100)
    assert result.device_action_agreement == 1.0 and result.device_max_abs_error <= 1e-5
    assert result.flash_bytes is not None and result.flash_bytes <= 32 * 1024
    assert result.ram_bytes is not None and result.ram_bytes <= 4 * 1024


@needs_arm
def test_int8_is_smaller_and_executes_fewer_instructions(tmp_path):
    graph = graph_of(spaces.Discrete(2))
    quant = quantize(graph, OBS[:100])
    float_size = firmware_size(c_source(graph), tmp_path / "f", 4, 1)
    int8_size = firmware_size(c_source(graph, quant), tmp_path / "q", 4, 1)
    assert int8_size["flash"] < float_size["flash"] / 1.5
    float_count = instructions_per_inference(c_source(graph), tmp_path / "fi", 4, 1, repeats=3)
    int8_count = instructions_per_inference(c_source(graph, quant), tmp_path / "qi", 4, 1, 3)
    assert 4 * 64 + 64 * 64 < int8_count < float_count
