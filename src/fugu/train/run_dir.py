"""Run directories: where a run lives, which checkpoint it resumes, and setting old runs aside.

A run lives in a run dir (see :func:`resolve_run_dir`)::

    runs/<env>-<algo>-<seed>-<timestamp>/
        config.toml  config.json  metrics.jsonl  summary.json
        events.out.tfevents.*      (TensorBoard)
        checkpoints/step-<global_step>/
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from fugu.checkpoint import Checkpoint, find_latest_valid, load_checkpoint
from fugu.core.errors import APIUsageError
from fugu.loggers import read_jsonl
from fugu.train.experiment import ExperimentConfig

__all__ = ["commit_run", "open_run", "plan_run", "resolve_resume", "resolve_run_dir", "run_prefix"]

_log = logging.getLogger(__name__)


def resolve_run_dir(
    config: ExperimentConfig,
    run_dir: str | Path | None = None,
    run_name: str | None = None,
    root: str | Path = "runs",
) -> Path:
    """The run directory: ``run_dir``, else ``root/run_name``, else a new timestamped one.

    A stable directory (``run_dir`` or ``run_name``) is what makes "run the same command
    again" resume; the default ``root/<env>-<algo>-<seed>-<YYYYmmdd-HHMMSS>`` is new every time.
    """
    if run_dir is not None:
        return Path(run_dir)
    if run_name is not None:
        return Path(root) / run_name
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{run_prefix(config)}-{stamp}"
    suffix = 1
    while path.exists():  # two runs started in the same second
        suffix += 1
        path = Path(root) / f"{run_prefix(config)}-{stamp}-{suffix}"
    return path


def run_prefix(config: ExperimentConfig) -> str:
    """``<env>-<algo>-<seed>``: the stem of the run dirs of ``config``."""
    return f"{config.env.id}-{config.algo}-{config.train.seed}"


def resolve_resume(
    config: ExperimentConfig,
    run_dir: Path,
    root: str | Path = "runs",
    explicit_dir: bool = True,
    skipped: list[str] | None = None,
) -> Path | None:
    """The checkpoint to resume from according to ``config.checkpoint.resume``.

    * ``never``: ``None``;
    * ``auto``: the newest valid checkpoint of ``run_dir``, if any (only when the run dir was
      named explicitly: a new timestamped run dir never resumes);
    * ``latest``: the same, or, when the run dir was not named explicitly, the newest valid
      checkpoint of the newest ``root/<env>-<algo>-<seed>-*`` run; an error when there is none;
    * a path: that checkpoint, or the newest valid checkpoint of that run dir.

    Corrupt or partial checkpoints are skipped with a logged warning (and listed in
    ``skipped`` when given).
    """
    mode = config.checkpoint.resume
    if mode == "never":
        return None
    if mode == "auto" and not explicit_dir:
        return None
    if mode in ("auto", "latest"):
        found = find_latest_valid(run_dir, skipped) if run_dir.exists() else None
        if found is None and mode == "latest" and not explicit_dir:
            candidates = sorted(Path(root).glob(f"{run_prefix(config)}-*"), reverse=True)
            for candidate in candidates:
                found = find_latest_valid(candidate, skipped)
                if found is not None:
                    break
        if found is None and mode == "latest":
            raise APIUsageError(
                f"--resume latest: no valid checkpoint in {run_dir}"
                + ("" if explicit_dir else f" nor in {root}/{run_prefix(config)}-*")
                + "; drop --resume to start a new run"
            )
        return found
    path = Path(mode)
    if (path / "manifest.json").is_file():
        return path
    found = find_latest_valid(path, skipped) if path.exists() else None
    if found is None:
        raise APIUsageError(f"--resume {mode}: no valid checkpoint there")
    return found


def plan_run(
    config: ExperimentConfig,
    run_dir: str | Path | None,
    run_name: str | None,
    root: str | Path,
    adopt_checkpoint_config: bool = False,
) -> tuple[ExperimentConfig, Path, Path | None, Checkpoint | None, list[str]]:
    """Resolve the run dir and the checkpoint to resume, writing nothing.

    The checkpoint's config must agree with ``config`` on
    :attr:`~fugu.train.experiment.ExperimentConfig.compared_sections`; with
    ``adopt_checkpoint_config`` (nothing was overridden: "continue that run") the checkpoint's
    own config is used instead.

    Returns:
        ``(config, run_dir, checkpoint_path or None, loaded checkpoint or None, skipped)``.
    """
    explicit_dir = run_dir is not None or run_name is not None
    if config.checkpoint.resume not in ("auto", "latest", "never") and not explicit_dir:
        # --resume PATH without a run dir continues that run in its own directory.
        path = Path(config.checkpoint.resume)
        run_dir = path.parent.parent if (path / "manifest.json").is_file() else path
        explicit_dir = True
    directory = resolve_run_dir(config, run_dir, run_name, root)
    skipped: list[str] = []
    resume_from = resolve_resume(config, directory, root, explicit_dir, skipped)
    checkpoint = None
    if resume_from is not None:
        checkpoint = load_checkpoint(resume_from)
        recorded = ExperimentConfig.from_dict(checkpoint.config)
        differences = config.diff(recorded, config.compared_sections)
        if differences and adopt_checkpoint_config:
            config = recorded.with_overrides({"checkpoint.resume": config.checkpoint.resume})
        elif differences:
            raise APIUsageError(
                f"cannot resume {resume_from}: the config differs from the checkpoint's ("
                + "; ".join(differences)
                + "); drop those overrides, or start a new run (--resume never or a new "
                "--run-name)"
            )
        if not explicit_dir:
            directory = resume_from.parent.parent
    return config, directory, resume_from, checkpoint, skipped


def commit_run(config: ExperimentConfig, directory: Path, checkpoint: Checkpoint | None) -> None:
    """Create the run dir: set a previous run's files aside (fresh run) or trim its metrics
    to the resumed checkpoint; save the config."""
    directory.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        _set_aside_previous_run(directory)
    else:
        _trim_metrics(directory / "metrics.jsonl", checkpoint.counters["global_step"])
    config.save(directory)


def open_run(
    config: ExperimentConfig, run_dir: str | Path | None, run_name: str | None, root: str | Path
) -> tuple[Path, Path | None, Checkpoint | None, list[str]]:
    """:func:`plan_run` then :func:`commit_run` (the config must agree with the checkpoint's).

    Returns:
        ``(run_dir, checkpoint_path or None, loaded checkpoint or None, skipped checkpoints)``.
    """
    config, directory, resume_from, checkpoint, skipped = plan_run(config, run_dir, run_name, root)
    commit_run(config, directory, checkpoint)
    return directory, resume_from, checkpoint, skipped


def _set_aside_previous_run(directory: Path) -> None:
    """A fresh run in a used directory: rename the old checkpoints and metrics out of the way
    (so a later resume cannot pick the old run's checkpoints)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in ("checkpoints", "metrics.jsonl"):
        old = directory / name
        if old.exists() and (old.is_file() or any(old.iterdir())):
            target = directory / f"{old.stem}-replaced-{stamp}{old.suffix}"
            old.rename(target)
            _log.warning(
                "starting a fresh run in %s: moved the old %s to %s", directory, name, target
            )


def _trim_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint being resumed (they are about to be redone)."""
    if not path.is_file():
        return
    kept = [row for row in read_jsonl(path) if int(row.get("step", 0)) <= step]
    path.write_text("".join(json.dumps(row) + "\n" for row in kept), "utf-8")
