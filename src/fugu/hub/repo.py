"""Push a trained policy to the HuggingFace Hub and pull it back.

A pushed repository is a fugu checkpoint at its root, so a pulled folder loads with
``fugu.load`` and ``fugu eval``/``fugu export`` take it as they take any checkpoint:

- ``manifest.json``, ``weights.safetensors``, ``state.pt``: the checkpoint, unchanged (its
  checksums still hold);
- ``config.json``: the resolved experiment config;
- ``policy.onnx`` and ``export.json``: the ONNX export and its parity report against torch;
- ``README.md``: the model card (:func:`fugu.hub.model_card`), with a results table from an
  evaluation run at push time and the run's training summary;
- ``eval.gif``: an evaluation episode, where the env renders frames.

:func:`stage` writes that folder; :func:`push` stages it and uploads it with
``huggingface_hub`` (or only writes it, with ``local_dir``); :func:`pull` downloads a
repository (``snapshot_download``: the Hub cache, ``HF_HUB_OFFLINE=1`` included) or takes a
local folder repository, and checks that it is a valid checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fugu.core.errors import APIUsageError, missing_dependency

__all__ = ["REPO_FILES", "PushResult", "pull", "push", "stage"]

log = logging.getLogger(__name__)

REPO_FILES = ("README.md", "manifest.json", "weights.safetensors", "state.pt", "config.json")
"""Files every pushed repository holds (``policy.onnx``, ``export.json``, ``eval.gif`` too
where they could be made)."""

_CHECKPOINT_FILES = ("manifest.json", "weights.safetensors", "state.pt")


@dataclass
class PushResult:
    """What :func:`push` wrote and where it went."""

    repo_id: str
    folder: str
    """The staged repository folder (``local_dir``, or a temporary one that is removed)."""
    files: list[str]
    url: str | None = None
    """The commit's URL on the Hub (``None`` with ``local_dir``)."""
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise APIUsageError(f"repo_id must look like 'user/name', got {repo_id!r}")


def _resolve(source: str | Path) -> tuple[Path, Path | None]:
    """``(checkpoint dir, run dir or None)`` of a run dir or a checkpoint."""
    from fugu.checkpoint import CheckpointError, verify_checkpoint
    from fugu.train.agent import find_checkpoint

    checkpoint = find_checkpoint(source)
    reason = verify_checkpoint(checkpoint)
    if reason is not None:
        raise CheckpointError(f"checkpoint {checkpoint} is not usable: {reason}")
    run_dir = next((p for p in checkpoint.parents if (p / "summary.json").is_file()), None)
    return checkpoint, run_dir


def _training_summary(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    summary = json.loads((run_dir / "summary.json").read_text("utf-8"))
    keys = ("timesteps", "final_return", "best_return", "solved", "steps_to_solve", "wall_s")
    return {f"train/{k}": summary[k] for k in keys if summary.get(k) is not None}


def _evaluate(
    checkpoint: Path, folder: Path, episodes: int, gif: bool, max_frames: int
) -> tuple[dict[str, Any], str | None, list[str]]:
    """Evaluation figures, the GIF's name (if one was written) and notes."""
    import numpy as np

    from fugu.train.agent import load
    from fugu.train.evaluate import evaluate_policy

    agent = load(checkpoint)
    notes: list[str] = []
    extra: dict[str, Any] = {"render_mode": "rgb_array"} if gif else {}  # as fugu eval does
    env = agent.make_env(1, **extra)
    try:
        try:
            result = evaluate_policy(
                env, agent.algo, episodes, render=gif, max_frames=max_frames, seed=0
            )
        except Exception as error:  # an env that cannot render: evaluate without frames
            if not gif:
                raise
            notes.append(f"no eval.gif: the env did not render ({error})")
            result = evaluate_policy(env, agent.algo, episodes, seed=0)
    finally:
        env.close()
    results: dict[str, Any] = {
        "episodes": len(result.returns),
        "mean_return": float(np.mean(result.returns)) if result.returns else float("nan"),
        "std_return": float(np.std(result.returns)) if result.returns else float("nan"),
        "mean_length": float(np.mean(result.lengths)) if result.lengths else float("nan"),
    }
    name = None
    if gif and result.frames is not None and len(result.frames):
        from fugu.loggers.media import write_video

        write_video(folder / "eval.gif", result.frames, fps=30)
        name = "eval.gif"
    return results, name, notes


def stage(
    source: str | Path,
    folder: str | Path,
    repo_id: str,
    *,
    eval_episodes: int = 5,
    gif: bool = True,
    max_frames: int = 300,
    onnx: bool = True,
) -> PushResult:
    """Write the repository of ``source`` (a run dir, its best or latest checkpoint, or a
    checkpoint) into ``folder``; see the module for the files.

    Args:
        source: A run dir or a checkpoint directory.
        folder: Where to write (created; files of the same names are replaced).
        repo_id: ``user/name`` (named in the model card).
        eval_episodes: Episodes of the evaluation in the results table (0: none, no GIF).
        gif: Record the evaluation's first episode as ``eval.gif`` (where the env renders).
        max_frames: Longest GIF, in frames.
        onnx: Export ``policy.onnx`` (skipped with a note where the policy cannot be).

    Raises:
        APIUsageError: A malformed ``repo_id``.
        CheckpointError: No valid checkpoint at ``source``.
    """
    from fugu.hub.card import model_card

    _check_repo_id(repo_id)
    checkpoint, run_dir = _resolve(source)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name in _CHECKPOINT_FILES:
        shutil.copyfile(checkpoint / name, out / name)
    manifest = json.loads((checkpoint / "manifest.json").read_text("utf-8"))
    config = manifest.get("config", {})
    (out / "config.json").write_text(json.dumps(config, indent=2, default=str), "utf-8")
    env_id = str(config.get("env", {}).get("id", manifest.get("metadata", {}).get("env", "?")))
    algo = str(config.get("algo", manifest.get("metadata", {}).get("algo", "?")))
    notes: list[str] = []
    results: dict[str, Any] = {}
    gif_name = None
    if eval_episodes > 0:
        results, gif_name, eval_notes = _evaluate(checkpoint, out, eval_episodes, gif, max_frames)
        notes += eval_notes
    results.update(_training_summary(run_dir))
    export_report = None
    if onnx:
        from fugu.core.errors import FuguError
        from fugu.export import export

        try:
            report = export(checkpoint, "onnx", out / "policy.onnx", num_samples=200)
            export_report = report.to_dict()
            export_report["path"] = "policy.onnx"
            (out / "export.json").write_text(json.dumps(export_report, indent=2), "utf-8")
        except FuguError as error:
            notes.append(f"no policy.onnx: {error}")
    card = model_card(
        repo_id=repo_id,
        env_id=env_id,
        algo=algo,
        config=config,
        results=results,
        export=export_report,
        gif=gif_name,
    )
    (out / "README.md").write_text(card, "utf-8")
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    return PushResult(repo_id, str(out), files, None, results, notes)


def push(
    source: str | Path,
    repo_id: str,
    *,
    local_dir: str | Path | None = None,
    token: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    eval_episodes: int = 5,
    gif: bool = True,
    onnx: bool = True,
) -> PushResult:
    """Push a trained policy to the HuggingFace Hub as ``repo_id``.

    Args:
        source: A run dir (its best checkpoint, else its latest) or a checkpoint directory.
        repo_id: ``user/name``.
        local_dir: Only write the repository folder there (a local folder repository), and
            upload nothing.
        token: A Hub token (default: the one ``hf auth login`` stored, or ``HF_TOKEN``).
        private: Create the repository private.
        commit_message: The upload's commit message.
        eval_episodes: Episodes of the model card's evaluation (0: none).
        gif: Record ``eval.gif`` of the evaluation.
        onnx: Add ``policy.onnx``.

    Raises:
        APIUsageError: A malformed ``repo_id``.
        CheckpointError: No valid checkpoint at ``source``.
        MissingDependencyError: ``huggingface_hub`` is not installed (and ``local_dir`` is not
            given).
    """
    if local_dir is not None:
        return stage(source, local_dir, repo_id, eval_episodes=eval_episodes, gif=gif, onnx=onnx)
    try:
        from huggingface_hub import HfApi
    except ImportError as error:
        raise missing_dependency("huggingface_hub", "hub") from error
    with tempfile.TemporaryDirectory(prefix="fugu-hub-") as tmp:
        result = stage(source, tmp, repo_id, eval_episodes=eval_episodes, gif=gif, onnx=onnx)
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            folder_path=tmp,
            repo_id=repo_id,
            repo_type="model",
            commit_message=commit_message or f"fugu push: {repo_id}",
        )
        result.url = str(getattr(info, "commit_url", info))
    log.info("pushed %s (%s)", repo_id, result.url)
    return result


def pull(
    repo_id: str | Path,
    *,
    local_dir: str | Path | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
) -> Path:
    """Download a pushed policy (or take a local folder repository) and return its folder.

    The folder is a checkpoint: ``fugu.load(pull(repo_id))`` gives the agent.

    Args:
        repo_id: ``user/name`` on the Hub, or a local folder repository (a path).
        local_dir: Copy the files there (default: use the Hub cache's snapshot folder).
        revision: A branch, tag or commit.
        cache_dir: The Hub cache (default ``HF_HUB_CACHE``); with ``HF_HUB_OFFLINE=1`` the
            snapshot is taken from it without the network.
        token: A Hub token for private repositories.

    Raises:
        CheckpointError: The repository is not a valid fugu checkpoint.
        MissingDependencyError: ``huggingface_hub`` is not installed.
    """
    from fugu.checkpoint import CheckpointError, verify_checkpoint

    path = Path(repo_id)
    if path.is_dir():
        folder = path
    else:
        _check_repo_id(str(repo_id))
        try:
            from huggingface_hub import snapshot_download
        except ImportError as error:
            raise missing_dependency("huggingface_hub", "hub") from error
        folder = Path(
            snapshot_download(str(repo_id), revision=revision, cache_dir=cache_dir, token=token)
        )
    if local_dir is not None:
        target = Path(local_dir)
        shutil.copytree(folder, target, dirs_exist_ok=True)  # follows the cache's symlinks
        folder = target
    reason = verify_checkpoint(folder)
    if reason is not None:
        raise CheckpointError(f"{repo_id} is not a fugu policy repository: {reason}")
    return folder
