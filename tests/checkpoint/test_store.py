"""Atomic checkpoints: round trips, checksums, corrupt and partial checkpoints, pruning."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from fugu.checkpoint import (
    CheckpointError,
    find_latest_valid,
    list_checkpoints,
    load_checkpoint,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
)


def _save(directory, step, value=1.0):
    weights = {"layer.weight": torch.full((2, 3), value), "layer.bias": torch.zeros(2)}
    state = {
        "optimizer": {"lr": 0.1, "exp_avg": torch.ones(3) * value},
        "rng": np.random.default_rng(step).bit_generator.state,
        "counters": {"global_step": step},
    }
    return save_checkpoint(
        directory,
        weights=weights,
        state=state,
        counters={"global_step": step, "epoch": step // 8},
        config={"env": {"id": "cartpole-v1"}},
        metadata={"note": "test"},
    )


def test_round_trip(tmp_path):
    path = _save(tmp_path / "checkpoints", 16, value=2.0)
    assert path.name == "step-000000000016"
    assert verify_checkpoint(path) is None
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt.weights["layer.weight"], torch.full((2, 3), 2.0))
    assert torch.equal(ckpt.state["optimizer"]["exp_avg"], torch.full((3,), 2.0))
    assert ckpt.state["rng"] == np.random.default_rng(16).bit_generator.state
    assert ckpt.counters == {"global_step": 16, "epoch": 2}
    assert ckpt.config == {"env": {"id": "cartpole-v1"}}
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert set(manifest["files"]) == {"weights.safetensors", "state.pt"}
    assert "fugu_version" in manifest
    assert torch.equal(load_weights(path)["layer.bias"], torch.zeros(2))


def test_same_step_is_replaced(tmp_path):
    _save(tmp_path, 8, value=1.0)
    path = _save(tmp_path, 8, value=3.0)
    assert list_checkpoints(tmp_path) == [path]
    assert load_checkpoint(path).weights["layer.weight"][0, 0] == 3.0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_counters_need_global_step(tmp_path):
    with pytest.raises(Exception, match="global_step"):
        save_checkpoint(tmp_path, weights={}, state={}, counters={"epoch": 1})


def test_corrupt_newest_falls_back_to_previous_with_warning(tmp_path, caplog):
    run_dir = tmp_path / "run"
    older = _save(run_dir / "checkpoints", 8)
    newest = _save(run_dir / "checkpoints", 16)
    with (newest / "state.pt").open("r+b") as file:
        file.seek(10)
        file.write(b"garbage")
    assert "checksum mismatch for state.pt" in verify_checkpoint(newest)
    with caplog.at_level(logging.WARNING, logger="fugu.checkpoint.store"):
        assert find_latest_valid(run_dir) == older
    assert "skipping checkpoint" in caplog.text and "checksum mismatch" in caplog.text
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(newest)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "manifest.json").unlink(), "missing manifest.json"),
        (lambda p: (p / "weights.safetensors").unlink(), "missing weights.safetensors"),
        (lambda p: (p / "manifest.json").write_text('{"files": {}}'), "format_version"),
        (lambda p: (p / "manifest.json").write_text("[]"), "no 'files' table"),
    ],
)
def test_damaged_checkpoints_are_reported(tmp_path, damage, reason):
    path = _save(tmp_path, 4)
    damage(path)
    assert reason in verify_checkpoint(path)
    assert find_latest_valid(tmp_path) is None


def test_interrupted_write_is_ignored_and_pruned(tmp_path):
    good = _save(tmp_path, 8)
    leftover = tmp_path / ".tmp-step-000000000016-abcd"
    leftover.mkdir()
    (leftover / "weights.safetensors").write_bytes(b"partial")
    assert list_checkpoints(tmp_path) == [good]
    assert find_latest_valid(tmp_path) == good
    assert leftover in prune_checkpoints(tmp_path, keep_last=5)
    assert not leftover.exists() and good.exists()


def test_keep_last(tmp_path):
    paths = [_save(tmp_path, step) for step in (8, 16, 24, 32)]
    removed = prune_checkpoints(tmp_path, keep_last=2)
    assert sorted(removed) == paths[:2]
    assert list_checkpoints(tmp_path) == paths[2:]
    assert prune_checkpoints(tmp_path, keep_last=0) == []
    assert prune_checkpoints(tmp_path / "missing", keep_last=1) == []


def test_keep_last_counts_only_valid_checkpoints(tmp_path):
    paths = [_save(tmp_path, step) for step in (8, 16, 24, 32)]
    (paths[-1] / "weights.safetensors").write_bytes(b"corrupt")  # the newest is bad
    removed = prune_checkpoints(tmp_path, keep_last=2)
    assert removed == [paths[0]]  # 16 and 24 are the two valid ones kept; 32 is not counted
    assert list_checkpoints(tmp_path) == paths[1:]
    assert find_latest_valid(tmp_path) == paths[2]


def test_no_checkpoint(tmp_path):
    assert find_latest_valid(tmp_path) is None
    assert list_checkpoints(tmp_path / "absent") == []
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        load_checkpoint(tmp_path / "absent")
