"""Checkpoints as directories written atomically, and their discovery on resume.

A checkpoint is a directory ``<checkpoints>/step-<global_step>/`` holding:

* ``manifest.json``: format version, fugu version, the resolved config, step counters and the
  SHA-256 of every other file;
* ``weights.safetensors``: the weights of every module the algorithm owns, keys
  ``<module>.<parameter>`` (loadable without pickle, e.g. by ``fugu eval``);
* ``state.pt``: everything else (the trainer's full state: optimizer, schedules, counters, every
  generator state, env state) via ``torch.save``.

It is written into a temporary sibling directory (``.tmp-…``) and renamed into place, so a
process killed mid-write leaves only a temp directory, which discovery ignores. Loading verifies
the checksums, so a truncated or modified file is detected.

``state.pt`` is a pickle: load only checkpoints you trust (as with any ``torch.load``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fugu.core.errors import APIUsageError, FuguError, missing_dependency

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_dir",
    "find_latest_valid",
    "list_checkpoints",
    "load_checkpoint",
    "load_weights",
    "prune_checkpoints",
    "save_checkpoint",
    "verify_checkpoint",
]

FORMAT_VERSION = 2
"""2: weights of every module the algorithm owns, keys ``<module>.<parameter>``."""
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
STATE = "state.pt"
_NAME = re.compile(r"^step-(\d+)$")
_TMP_PREFIX = ".tmp-"
_log = logging.getLogger(__name__)


class CheckpointError(FuguError, ValueError):
    """A checkpoint is missing, partial or corrupt (the message says which file and why)."""


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        path: Its directory.
        manifest: The parsed ``manifest.json``.
        weights: Every module's weights, ``<module>.<parameter>`` (``weights.safetensors``).
        state: The rest of the training state (from ``state.pt``).
    """

    path: Path
    manifest: dict[str, Any]
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        """The resolved experiment config the checkpoint was written with."""
        return dict(self.manifest.get("config", {}))

    @property
    def counters(self) -> dict[str, int]:
        """Step counters (``global_step``, ``epoch``, ...)."""
        return dict(self.manifest.get("counters", {}))


def checkpoint_dir(path: str | Path) -> Path:
    """The checkpoints directory of ``path``: ``path/checkpoints`` for a run dir, else ``path``."""
    path = Path(path)
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _save_weights(weights: Mapping[str, torch.Tensor], path: Path) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError as error:  # pragma: no cover - safetensors is a dependency
        raise missing_dependency("safetensors", "dev") from error
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in weights.items()}
    save_file(tensors, str(path))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Load the policy weights of a checkpoint directory (or a ``.safetensors`` file), no pickle."""
    try:
        from safetensors.torch import load_file
    except ImportError as error:  # pragma: no cover - safetensors is a dependency
        raise missing_dependency("safetensors", "dev") from error
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    return load_file(str(path))


def save_checkpoint(
    directory: str | Path,
    *,
    weights: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    counters: Mapping[str, int],
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically into ``directory`` and return its path.

    Args:
        directory: The checkpoints directory (created).
        weights: Tensors by name (every module's weights), saved as safetensors.
        state: The rest of the training state, saved with ``torch.save``.
        counters: Step counters; ``counters["global_step"]`` names the checkpoint.
        config: The resolved experiment config (a JSON-serialisable dict).
        metadata: Extra JSON-serialisable fields for the manifest.

    Returns:
        The checkpoint's directory, ``directory/step-<global_step>``. A checkpoint already
        there (same step) is replaced.
    """
    from fugu import __version__

    if "global_step" not in counters:
        raise APIUsageError("counters must contain 'global_step' (it names the checkpoint)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{int(counters['global_step']):012d}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=directory))
    try:
        _save_weights(weights, tmp / WEIGHTS)
        torch.save(dict(state), tmp / STATE)
        manifest = {
            "format_version": FORMAT_VERSION,
            "fugu_version": __version__,
            "created": time.time(),
            "counters": {key: int(value) for key, value in counters.items()},
            "config": dict(config or {}),
            "metadata": dict(metadata or {}),
            "files": {file: _sha256(tmp / file) for file in (WEIGHTS, STATE)},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), "utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is a normal directory
        for file in (WEIGHTS, STATE, MANIFEST):
            with (tmp / file).open("rb") as handle:
                os.fsync(handle.fileno())
        target = directory / name
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}old-", dir=directory))
            os.rename(target, old / name)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint directories under ``directory`` (a run dir or its ``checkpoints/``), oldest
    first by step; temporary directories of interrupted writes are not listed."""
    directory = checkpoint_dir(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def verify_checkpoint(path: str | Path) -> str | None:
    """Why the checkpoint at ``path`` is not usable, or ``None`` when it is valid.

    Checks that the manifest parses, has a known format version, and that every listed file
    exists with its recorded SHA-256.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return f"missing {MANIFEST}"
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"{MANIFEST} is not valid JSON ({error})"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return f"{MANIFEST} has no 'files' table"
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        return f"format_version {version!r} is not supported (this fugu reads {FORMAT_VERSION})"
    for file in (WEIGHTS, STATE):
        if file not in manifest["files"]:
            return f"{MANIFEST} does not list {file}"
    for file, checksum in manifest["files"].items():
        if not (path / file).is_file():
            return f"missing {file}"
        if _sha256(path / file) != checksum:
            return f"checksum mismatch for {file} (truncated or modified)"
    return None


def load_checkpoint(path: str | Path, map_location: str = "cpu", verify: bool = True) -> Checkpoint:
    """Load a checkpoint directory, verifying it first.

    Raises:
        CheckpointError: The checkpoint is missing, partial or corrupt.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint directory at {path}")
    if verify and (reason := verify_checkpoint(path)) is not None:
        raise CheckpointError(f"checkpoint {path} is not usable: {reason}")
    manifest = json.loads((path / MANIFEST).read_text("utf-8"))
    state = torch.load(path / STATE, map_location=map_location, weights_only=False)
    return Checkpoint(path, manifest, load_weights(path), state)


def find_latest_valid(directory: str | Path, skipped: list[str] | None = None) -> Path | None:
    """The newest valid checkpoint under ``directory`` (a run dir or its ``checkpoints/``).

    Invalid checkpoints (bad JSON, missing files, checksum mismatch) are skipped with a logged
    warning naming the reason; temp directories of interrupted writes are ignored.

    Args:
        directory: A run dir or a checkpoints directory.
        skipped: When given, ``"<path>: <reason>"`` is appended for each skipped checkpoint.

    Returns:
        The checkpoint's path, or ``None`` when there is no valid checkpoint.
    """
    for path in reversed(list_checkpoints(directory)):
        reason = verify_checkpoint(path)
        if reason is None:
            return path
        _log.warning("skipping checkpoint %s: %s", path, reason)
        if skipped is not None:
            skipped.append(f"{path}: {reason}")
    return None


def prune_checkpoints(directory: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` valid checkpoints (corrupt ones newer than
    those are left, not counted), and leftover temp directories.

    Call it only from the process writing checkpoints (a temp dir may be a write in progress).
    ``keep_last <= 0`` keeps every checkpoint. Returns the deleted paths.
    """
    directory = checkpoint_dir(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        if path.name.startswith(_TMP_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if keep_last > 0:
        # Only valid checkpoints count: a corrupt newer one must not push a good one out.
        kept = 0
        for path in reversed(list_checkpoints(directory)):
            if kept < keep_last:
                reason = verify_checkpoint(path)
                if reason is None:
                    kept += 1
                else:
                    _log.warning("not counting corrupt checkpoint %s: %s", path, reason)
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
