"""``train(config)``: one training run with logging, checkpoints, callbacks and resume.

:func:`train` builds the env, policy, PPO and :class:`~fugu.train.loop.Trainer` from an
:class:`~fugu.train.experiment.ExperimentConfig`, runs epochs until ``train.total_timesteps``,
and after every epoch:

* logs the trainer's metrics (plus ``env/mean_return_100`` and user callbacks' metrics) to every
  sink (``metrics.jsonl``, TensorBoard, W&B);
* every ``logging.histogram_interval`` epochs logs histograms of weights, gradients and actions,
  every ``logging.video_interval`` epochs an episode video rendered from the env;
* every ``checkpoint.interval`` epochs writes a checkpoint (and one at the end);
* checks the solve criterion: mean return of the last 100 episodes ``>= env.solve_threshold``.

A run lives in a run dir (see :func:`resolve_run_dir`)::

    runs/<env>-ppo-<seed>-<timestamp>/
        config.toml  config.json  metrics.jsonl  summary.json
        events.out.tfevents.*      (TensorBoard)
        checkpoints/step-<global_step>/

Stopping: pass a ``threading.Event`` as ``stop``; once set, the run finishes its current epoch,
writes a checkpoint and returns with ``interrupted=True``. The CLI sets it on the first Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fugu.vector
from fugu.algos.ppo import PPO
from fugu.checkpoint import (
    Checkpoint,
    find_latest_valid,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from fugu.core.errors import APIUsageError
from fugu.loggers import JsonlLogger, Logger, MultiLogger, read_jsonl
from fugu.models import make_policy
from fugu.train.diagnostics import GradientRecorder, log_histograms, log_video
from fugu.train.experiment import ExperimentConfig
from fugu.train.loop import Trainer, make_train_envs
from fugu.vector import EnvFactory

__all__ = [
    "EpochContext",
    "Progress",
    "TrainSummary",
    "build_env",
    "resolve_resume",
    "resolve_run_dir",
    "train",
]

_log = logging.getLogger(__name__)
SOLVE_WINDOW = 100
"""Episodes averaged by the solve criterion."""
_WEIGHTS_IN_SAFETENSORS = "<policy.safetensors>"
COMPARED_SECTIONS = ("env", "train", "ppo", "policy")
"""Config sections a resumed run must share with its checkpoint."""


@dataclass
class EpochContext:
    """What a callback sees after each epoch.

    Attributes:
        trainer: The :class:`~fugu.train.loop.Trainer` (its ``algo``, ``policy``, counters).
        config: The experiment config.
        run_dir: The run directory.
        epoch: Epochs done so far.
        global_step: Env steps done so far.
        metrics: This epoch's metrics (read-only by convention).
        logger: The run's logger (callbacks may log images, histograms, ...).
    """

    trainer: Trainer
    config: ExperimentConfig
    run_dir: Path
    epoch: int
    global_step: int
    metrics: Mapping[str, float]
    logger: Logger


Callback = Callable[[EpochContext], Mapping[str, float] | None]
"""A per-epoch callback: returns extra metrics to log (or ``None``)."""


@dataclass
class Progress:
    """Reported to ``on_progress`` after every epoch (the CLI's dashboard draws it)."""

    epoch: int
    global_step: int
    total_timesteps: int
    elapsed_s: float
    metrics: dict[str, float]
    mean_return: float
    solved: bool
    run_dir: Path

    @property
    def fraction(self) -> float:
        """Fraction of the run done, in ``[0, 1]``."""
        return min(self.global_step / max(self.total_timesteps, 1), 1.0)


@dataclass
class TrainSummary:
    """The outcome of :func:`train` (also written as ``summary.json`` in the run dir)."""

    env: str
    algo: str
    seed: int
    timesteps: int
    total_timesteps: int
    epochs: int
    wall_s: float
    sps: float
    final_return: float | None
    solved: bool
    time_to_solve_s: float | None
    steps_to_solve: int | None
    checkpoint: str | None
    run_dir: str
    interrupted: bool = False
    resumed_from: str | None = None
    skipped_checkpoints: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


# -- run directories and resume ------------------------------------------------------------
def resolve_run_dir(
    config: ExperimentConfig,
    run_dir: str | Path | None = None,
    run_name: str | None = None,
    root: str | Path = "runs",
) -> Path:
    """The run directory: ``run_dir``, else ``root/run_name``, else a new timestamped one.

    A stable directory (``run_dir`` or ``run_name``) is what makes "run the same command
    again" resume; the default ``root/<env>-ppo-<seed>-<YYYYmmdd-HHMMSS>`` is new every time.
    """
    if run_dir is not None:
        return Path(run_dir)
    if run_name is not None:
        return Path(root) / run_name
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{_run_prefix(config)}-{stamp}"
    suffix = 1
    while path.exists():  # two runs started in the same second
        suffix += 1
        path = Path(root) / f"{_run_prefix(config)}-{stamp}-{suffix}"
    return path


def _run_prefix(config: ExperimentConfig) -> str:
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
      checkpoint of the newest ``root/<env>-ppo-<seed>-*`` run; an error when there is none;
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
            candidates = sorted(Path(root).glob(f"{_run_prefix(config)}-*"), reverse=True)
            for candidate in candidates:
                found = find_latest_valid(candidate, skipped)
                if found is not None:
                    break
        if found is None and mode == "latest":
            raise APIUsageError(
                f"--resume latest: no valid checkpoint in {run_dir}"
                + ("" if explicit_dir else f" nor in {root}/{_run_prefix(config)}-*")
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


# -- building ------------------------------------------------------------------------------
def build_env(
    config: ExperimentConfig, num_envs: int | None = None, seed: int | None = None
) -> list[Any]:
    """The env shards of ``config.env``: two halves of a native env when double-buffering
    (see :func:`~fugu.train.loop.make_train_envs`), else one vec env from
    :func:`fugu.vector.make`."""
    env = config.env
    rows = env.num_envs if num_envs is None else num_envs
    seed = config.train.seed if seed is None else seed
    kwargs = dict(env.kwargs)
    native = env.backend == "native" or (
        env.backend == "auto" and EnvFactory(env.id, kwargs).accepts("num_envs")
    )
    if native:
        if env.threads > 1:
            kwargs["threads"] = env.threads
        return make_train_envs(env.id, rows, seed, config.train.double_buffer, **kwargs)
    return [
        fugu.vector.make(
            env.id,
            num_envs=rows,
            backend=env.backend,
            num_workers=env.threads if env.threads > 1 else None,
            seed=seed,
            env_kwargs=kwargs,
        )
    ]


def _make_logger(config: ExperimentConfig, run_dir: Path, resumed: bool) -> MultiLogger:
    loggers: list[Logger] = []
    settings = config.logging
    if settings.jsonl:
        loggers.append(JsonlLogger(run_dir / "metrics.jsonl"))
    if settings.tensorboard:
        from fugu.loggers.tensorboard import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir))
    if settings.wandb:
        from fugu.loggers.wandb import WandbLogger

        loggers.append(
            WandbLogger(
                settings.wandb_project,
                mode=settings.wandb_mode,
                name=run_dir.name,
                group=settings.wandb_group,
                dir=run_dir,
                config=config.to_dict(),
                run_id=run_dir.name.replace(".", "-")[-64:],
            )
        )
    logger = MultiLogger(loggers)
    if not resumed:
        logger.log_config(config.to_dict())
    return logger


def _every(epoch: int, interval: int) -> bool:
    return interval > 0 and epoch % interval == 0


def _without_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The trainer's state without the policy weights (they go to ``policy.safetensors``)."""
    algo = dict(state["algo"])
    algo["policy"] = _WEIGHTS_IN_SAFETENSORS
    return {**state, "algo": algo}


def _with_weights(state: dict[str, Any], weights: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Undo :func:`_without_weights` with the weights loaded from ``policy.safetensors``."""
    algo = dict(state["algo"])
    if algo.get("policy") == _WEIGHTS_IN_SAFETENSORS:
        algo["policy"] = dict(weights)
    return {**state, "algo": algo}


def _mean_last(returns: Sequence[float], window: int = SOLVE_WINDOW) -> float:
    values = list(returns)[-window:]
    return float(np.mean(values)) if values else float("nan")


# -- the run -------------------------------------------------------------------------------
def train(
    config: ExperimentConfig,
    callbacks: Sequence[Callback] = (),
    run_dir: str | Path | None = None,
    quiet: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    run_name: str | None = None,
    root: str | Path = "runs",
    stop: threading.Event | None = None,
    max_epochs: int | None = None,
) -> TrainSummary:
    """Train PPO as ``config`` says, logging, checkpointing and resuming.

    Args:
        config: The experiment.
        callbacks: Called after every epoch with an :class:`EpochContext`; the metrics they
            return are logged with the epoch's.
        run_dir: The run directory (default: see :func:`resolve_run_dir`).
        quiet: Do not log progress messages (``logging`` INFO) from this module.
        on_progress: Called after every epoch with a :class:`Progress` (for dashboards).
        run_name: A stable run directory name under ``root`` (makes re-running resume).
        root: Parent of default run directories.
        stop: When set (e.g. by a SIGINT handler), the run stops after the current epoch,
            writes a checkpoint and returns with ``interrupted=True``.
        max_epochs: Run at most this many epochs in this call (the schedule still follows
            ``train.total_timesteps``; resume later to continue).

    Returns:
        A :class:`TrainSummary` (also written to ``run_dir/summary.json``).
    """
    directory, resume_from, checkpoint, skipped = _open_run(config, run_dir, run_name, root)
    if not quiet:
        _log.info("run dir: %s", directory)
    trainer = _build_trainer(config)
    record = _Record()
    if checkpoint is not None:
        trainer.load_state_dict(_with_weights(checkpoint.state["trainer"], checkpoint.weights))
        record = _Record(**checkpoint.state.get("run", {}))
        if not quiet:
            _log.info("resumed from %s (step %d)", resume_from, trainer.global_step)
    session = _Session(config, trainer, directory, record, list(callbacks))
    session.last_saved = resume_from
    session.saved_epoch = trainer.epoch if checkpoint is not None else -1
    logger = _make_logger(config, directory, resumed=checkpoint is not None)
    interrupted = False
    epochs_run = 0
    try:
        while not trainer.done and (max_epochs is None or epochs_run < max_epochs):
            progress = session.epoch(logger)
            epochs_run += 1
            if on_progress is not None:
                on_progress(progress)
            if _every(trainer.epoch, config.checkpoint.interval):
                session.save()
            if stop is not None and stop.is_set():
                interrupted = True
                break
        if session.saved_epoch != trainer.epoch:
            session.save()
    finally:
        session.close()
        logger.close()
        trainer.close()
    summary = session.summary(interrupted, resume_from, skipped)
    (directory / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _open_run(
    config: ExperimentConfig, run_dir: str | Path | None, run_name: str | None, root: str | Path
) -> tuple[Path, Path | None, Checkpoint | None, list[str]]:
    """Resolve the run dir and the checkpoint to resume; save the config there."""
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
        differences = config.diff(ExperimentConfig.from_dict(checkpoint.config), COMPARED_SECTIONS)
        if differences:
            raise APIUsageError(
                f"cannot resume {resume_from}: the config differs from the checkpoint's ("
                + "; ".join(differences)
                + "); drop those overrides, or start a new run (--resume never or a new "
                "--run-name)"
            )
        if not explicit_dir:
            directory = resume_from.parent.parent
    directory.mkdir(parents=True, exist_ok=True)
    if checkpoint is None:
        _set_aside_previous_run(directory)
    else:
        _trim_metrics(directory / "metrics.jsonl", checkpoint.counters["global_step"])
    config.save(directory)
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


def _build_trainer(config: ExperimentConfig) -> Trainer:
    """Envs, policy (seeded by ``train.seed``), PPO and the trainer of ``config``."""
    envs = build_env(config)
    if config.train.torch_threads is not None:
        # The Trainer sets this too, but the policy's (orthogonal) initialisation already
        # depends on it: set it first so a run's initial weights do not depend on history.
        torch.set_num_threads(config.train.torch_threads)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)  # the policy's initialisation, not the global RNG
        policy = make_policy(
            envs[0].single_observation_space, envs[0].single_action_space, config.policy
        )
    total_updates = config.train.num_updates(config.env.num_envs)
    algo = PPO(policy, config.ppo, total_updates, config.train.device)
    return Trainer(envs, policy, algo, config.train)


@dataclass
class _Record:
    """The run's own bookkeeping, carried in checkpoints (``state["run"]``)."""

    elapsed_s: float = 0.0
    time_to_solve_s: float | None = None
    steps_to_solve: int | None = None


class _Session:
    """One call of :func:`train`: runs epochs, logs them, writes checkpoints."""

    def __init__(
        self,
        config: ExperimentConfig,
        trainer: Trainer,
        directory: Path,
        record: _Record,
        callbacks: list[Callback],
    ) -> None:
        self.config = config
        self.trainer = trainer
        self.directory = directory
        self.record = record
        self.callbacks = callbacks
        self.grads = GradientRecorder(trainer.policy)
        self.start = time.perf_counter()
        self.start_step = trainer.global_step
        self.last_saved: Path | None = None
        self.saved_epoch = -1

    def elapsed(self) -> float:
        """Seconds of training of the whole run (previous sessions included)."""
        return self.record.elapsed_s + time.perf_counter() - self.start

    def epoch(self, logger: Logger) -> Progress:
        """Train one epoch, run callbacks, log everything; the epoch's :class:`Progress`."""
        config, trainer, record = self.config, self.trainer, self.record
        self.grads.active = _every(trainer.epoch + 1, config.logging.histogram_interval)
        metrics = dict(trainer.train_epoch())
        self.grads.active = False
        mean_return = _mean_last(trainer.episode_returns)
        metrics["env/mean_return_100"] = mean_return
        if record.steps_to_solve is None and mean_return >= config.solve_threshold:
            record.time_to_solve_s = self.elapsed()
            record.steps_to_solve = trainer.global_step
        metrics["train/solved"] = float(record.steps_to_solve is not None)
        step = trainer.global_step
        context = EpochContext(
            trainer, config, self.directory, trainer.epoch, step, metrics, logger
        )
        for callback in self.callbacks:
            extra = callback(context)
            if extra:
                metrics.update({key: float(value) for key, value in extra.items()})
        if _every(trainer.epoch, config.logging.histogram_interval):
            log_histograms(logger, trainer.policy, self.grads.grads, trainer, step)
            self.grads.grads = {}
        if _every(trainer.epoch, config.logging.video_interval):
            metrics.update(log_video(logger, config, trainer.policy, step))
        logger.log_metrics(metrics, step)
        logger.flush()
        return Progress(
            trainer.epoch,
            step,
            config.train.total_timesteps,
            self.elapsed(),
            metrics,
            mean_return,
            record.steps_to_solve is not None,
            self.directory,
        )

    def save(self) -> Path:
        """Write a checkpoint of the trainer and the record; prune old ones."""
        trainer = self.trainer
        state = {
            "trainer": _without_weights(trainer.state_dict()),
            "run": {**asdict(self.record), "elapsed_s": self.elapsed()},
        }
        self.last_saved = save_checkpoint(
            self.directory / "checkpoints",
            weights=trainer.policy.state_dict(),
            state=state,
            counters={"global_step": trainer.global_step, "epoch": trainer.epoch},
            config=self.config.to_dict(),
            metadata={"env": self.config.env.id, "algo": self.config.algo},
        )
        prune_checkpoints(self.directory / "checkpoints", self.config.checkpoint.keep_last)
        self.saved_epoch = trainer.epoch
        return self.last_saved

    def summary(
        self, interrupted: bool, resumed_from: Path | None, skipped: list[str]
    ) -> TrainSummary:
        """The session's :class:`TrainSummary`."""
        config, trainer, record = self.config, self.trainer, self.record
        wall = time.perf_counter() - self.start
        final = _mean_last(trainer.episode_returns)
        return TrainSummary(
            env=config.env.id,
            algo=config.algo,
            seed=config.train.seed,
            timesteps=trainer.global_step,
            total_timesteps=config.train.total_timesteps,
            epochs=trainer.epoch,
            wall_s=wall,
            sps=(trainer.global_step - self.start_step) / wall if wall > 0 else 0.0,
            final_return=None if math.isnan(final) else final,
            solved=record.steps_to_solve is not None,
            time_to_solve_s=record.time_to_solve_s,
            steps_to_solve=record.steps_to_solve,
            checkpoint=None if self.last_saved is None else str(self.last_saved),
            run_dir=str(self.directory),
            interrupted=interrupted,
            resumed_from=None if resumed_from is None else str(resumed_from),
            skipped_checkpoints=skipped,
        )

    def close(self) -> None:
        """Remove the gradient hooks."""
        self.grads.close()
