"""fugu push / pull with no network: a local folder repository, a patched upload, the Hub
client's offline mode over a pre-populated cache."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import fugu
from fugu.checkpoint import CheckpointError
from fugu.cli.main import main
from fugu.core.errors import APIUsageError
from fugu.hub import REPO_FILES, pull, push

torch.set_num_threads(1)
hf = pytest.importorskip("huggingface_hub")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "cartpole"
    args = ["train", "cartpole-v1", "--run-dir", str(run), "--quiet", "--env.num-envs", "4",
            "--train.num-steps", "16", "--train.total-timesteps", "128",
            "--logging.tensorboard", "false", "--seed", "3"]  # fmt: skip
    assert main(args) == 0
    return run


@pytest.fixture(scope="module")
def local_repo(run_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("repo") / "cartpole-ppo"
    push(run_dir, "me/cartpole-ppo", local_dir=folder, eval_episodes=2)
    return folder


def _same_actions(a, b, n=64):
    obs = np.random.default_rng(0).normal(0, 1, (n, 4)).astype(np.float32)
    return np.array_equal(a.predict(obs)[0], b.predict(obs)[0])


def test_local_folder_repository_holds_a_loadable_policy(run_dir, local_repo):
    from safetensors.numpy import load_file

    names = {p.name for p in local_repo.iterdir()}
    assert set(REPO_FILES) | {"policy.onnx", "export.json", "eval.gif"} <= names
    manifest = json.loads((local_repo / "manifest.json").read_text())
    assert json.loads((local_repo / "config.json").read_text()) == manifest["config"]
    weights = load_file(str(local_repo / "weights.safetensors"))
    assert any(k.startswith("policy.") for k in weights)
    report = json.loads((local_repo / "export.json").read_text())
    assert report["action_agreement"] == 1.0 and report["max_abs_error"] <= 1e-5
    card = (local_repo / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: fugu\n") and "- cartpole-v1" in card
    assert "| mean_return |" in card and "| train/timesteps | 128 |" in card
    assert "![evaluation episode](eval.gif)" in card and '"seed": 3' in card
    assert (local_repo / "eval.gif").read_bytes()[:6] == b"GIF89a"
    assert _same_actions(fugu.load(pull(local_repo)), fugu.load(run_dir))


def _fake_hub(monkeypatch, remote):
    """HfApi's create/upload write into ``remote/<repo_id>`` (no network)."""
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)
        return repo_id

    def upload_folder(self, *, folder_path, repo_id, commit_message, **kwargs):
        shutil.copytree(folder_path, remote / repo_id, dirs_exist_ok=True)
        calls["upload"] = (repo_id, commit_message)
        return f"https://huggingface.co/{repo_id}/commit/0123"

    monkeypatch.setattr(hf.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(hf.HfApi, "upload_folder", upload_folder)
    return calls


def _cache_snapshot(cache, repo_id, files_from, commit="0" * 39 + "1"):
    """Lay out a Hub cache entry (refs/main -> snapshots/<commit>/...) from a folder."""
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    shutil.copytree(files_from, storage / "snapshots" / commit)
    return storage / "snapshots" / commit


def test_push_uploads_and_offline_pull_reads_the_cache(run_dir, tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    calls = _fake_hub(monkeypatch, remote)
    result = push(run_dir, "me/cartpole-ppo", private=True, eval_episodes=1, gif=False)
    assert calls["create"] == ("me/cartpole-ppo", {"private": True, "exist_ok": True,
                                                    "repo_type": "model"})  # fmt: skip
    assert calls["upload"][1] == "fugu push: me/cartpole-ppo"
    assert result.url.endswith("/commit/0123")
    uploaded = remote / "me" / "cartpole-ppo"
    assert set(REPO_FILES) <= {p.name for p in uploaded.iterdir()}
    assert not (uploaded / "eval.gif").exists()

    cache = tmp_path / "cache"
    snapshot = _cache_snapshot(cache, "me/cartpole-ppo", uploaded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf.constants, "HF_HUB_OFFLINE", True)
    folder = pull("me/cartpole-ppo", cache_dir=cache)
    assert folder == snapshot
    assert _same_actions(fugu.load(folder), fugu.load(run_dir))
    copied = pull("me/cartpole-ppo", cache_dir=cache, local_dir=tmp_path / "mine")
    assert copied == tmp_path / "mine" and (copied / "weights.safetensors").is_file()
    with pytest.raises(Exception, match=r"(?i)offline|cannot find"):
        pull("me/not-cached", cache_dir=cache)


def test_cli_push_and_pull(run_dir, local_repo, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli-repo"
    argv = ["push", str(run_dir), "--repo-id", "me/x", "--local-dir", str(out),
            "--episodes", "0", "--no-onnx", "--json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["folder"] == str(out) and "policy.onnx" not in report["files"]
    assert "README.md" in report["files"]
    assert main(["pull", str(local_repo), "--local-dir", str(tmp_path / "p")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "p")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf.constants, "HF_HUB_OFFLINE", True)
    assert main(["pull", "me/absent", "--cache-dir", str(tmp_path / "empty")]) == 1
    assert "fugu pull: error" in capsys.readouterr().err


def test_bad_inputs_are_clear_errors(run_dir, tmp_path):
    with pytest.raises(APIUsageError, match="user/name"):
        push(run_dir, "no-slash", local_dir=tmp_path / "x")
    with pytest.raises(CheckpointError, match="no run or checkpoint"):
        push(tmp_path / "missing", "me/x", local_dir=tmp_path / "x")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "README.md").write_text("hi")
    with pytest.raises(CheckpointError, match="not a fugu policy repository"):
        pull(tmp_path / "junk")
