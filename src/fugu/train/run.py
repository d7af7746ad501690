"""``train(config)``: one training run of any registered algorithm, composed of its parts.

:func:`train` opens the run directory and the checkpoint to resume
(:mod:`fugu.train.run_dir`), builds the env shards, the algorithm and the trainer
(:mod:`fugu.train.build`), then lets a :class:`~fugu.train.session.Session` run epochs until
``train.total_timesteps``: logging, callbacks, solve detection, checkpoints.

Stopping: pass a ``threading.Event`` as ``stop``; once set, the run finishes its current epoch,
writes a checkpoint and returns with ``interrupted=True``. The CLI sets it on the first Ctrl-C.
With ``train.stop_on_solve`` the run also ends at the epoch that first meets the solve threshold.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fugu.checkpoint import load_checkpoint
from fugu.core.errors import APIUsageError
from fugu.loggers import MultiLogger
from fugu.train.build import build_env, build_trainer, make_logger
from fugu.train.distributed import (
    DistInfo,
    agree,
    broadcast_modules,
    broadcast_object,
    dist_info,
    rank_config,
)
from fugu.train.experiment import ExperimentConfig
from fugu.train.run_dir import commit_run, plan_run, resolve_resume, resolve_run_dir
from fugu.train.session import (
    Callback,
    EpochContext,
    Progress,
    RunRecord,
    Session,
    TrainSummary,
    every,
    load_module_weights,
)
from fugu.train.validate import (
    check_device,
    check_env_id,
    check_solve_metric,
    check_writable,
)

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
    trainer_kwargs: dict[str, Any] | None = None,
    adopt_checkpoint_config: bool = False,
) -> TrainSummary:
    """Train ``config.train.algo`` as ``config`` says, logging, checkpointing and resuming.

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
        trainer_kwargs: Extra arguments of the :class:`~fugu.train.loop.Trainer`
            (``policy_map``, ``reward_hooks``, ``dataset``).
        adopt_checkpoint_config: When resuming, train on with the checkpoint's own config
            instead of failing where ``config`` differs from it (the CLI passes it when no
            option was overridden).

    Returns:
        A :class:`TrainSummary` (also written to ``run_dir/summary.json``).
    """
    # Everything that can be wrong is checked before the run folder exists.
    check_device(config.train.device)
    check_env_id(config.env.id)
    check_solve_metric(config.env.id, config.env.solve_metric)
    info = dist_info()
    quiet = quiet or not info.is_main
    if info.enabled and getattr(config.algo_config, "target_kl", None) is not None:
        raise APIUsageError(
            f"{config.algo}.target_kl stops an update early on one rank's KL, which would "
            "leave the other ranks waiting in the gradient all-reduce; unset it for "
            "distributed training"
        )
    if info.is_main:
        check_writable(run_dir if run_dir is not None else root, "the run dir")
        config, directory, resume_from, checkpoint, skipped = plan_run(
            config, run_dir, run_name, root, adopt_checkpoint_config
        )
    if info.enabled:  # rank 0 plans the run; the others follow it
        plan: Any = (config, directory, resume_from, skipped) if info.is_main else None
        config, directory, resume_from, skipped = broadcast_object(plan)
        if not info.is_main:
            checkpoint = None if resume_from is None else load_checkpoint(resume_from)
    if checkpoint is not None and "trainer" not in checkpoint.state:
        raise APIUsageError(
            f"cannot resume {resume_from}: a best checkpoint holds weights only (for fugu "
            "eval and fugu.load); resume from the run dir instead"
        )
    if not quiet:
        _log.info("building %s (env kernels compile on the first run only)", config.env.id)
    rank_cfg = rank_config(config, info) if info.enabled else config
    trainer = build_trainer(rank_cfg, **(trainer_kwargs or {}))
    try:
        if info.is_main:
            commit_run(config, directory, checkpoint)
    except BaseException:
        trainer.close()
        raise
    if not quiet:
        _log.info("run dir: %s", directory)
    record = RunRecord()
    if checkpoint is not None:
        load_module_weights(trainer.algo.modules(), checkpoint.weights)
        trainer.load_state_dict(_rank_state(checkpoint.state, info))
        record = RunRecord(**checkpoint.state.get("run", {}))
        if not quiet:
            _log.info("resumed from %s (step %d)", resume_from, trainer.global_step)
    elif info.enabled:
        broadcast_modules(trainer.algo.modules())  # every rank starts from rank 0's weights
    session = Session(config, trainer, directory, record, list(callbacks))
    session.last_saved = resume_from
    session.saved_epoch = trainer.epoch if checkpoint is not None else -1
    logger = (
        make_logger(config, directory, resumed=checkpoint is not None)
        if info.is_main
        else MultiLogger([])
    )
    interrupted = False
    epochs_run = 0
    try:
        while not trainer.done and (max_epochs is None or epochs_run < max_epochs):
            progress = session.epoch(logger)
            epochs_run += 1
            if on_progress is not None:
                on_progress(progress)
            if every(trainer.epoch, config.checkpoint.interval):
                session.save()
            if agree(stop is not None and stop.is_set()):
                interrupted = True
                break
            if agree(session.stopped_on_solve):
                if not quiet:
                    _log.info("solved: stopping (train.stop_on_solve)")
                break
        if session.saved_epoch != trainer.epoch:
            session.save()
        session.save_best(final=True)
    finally:
        session.close()
        logger.close()
        trainer.close()
    summary = session.summary(interrupted, resume_from, skipped)
    if info.is_main:
        (directory / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _rank_state(state: dict[str, Any], info: DistInfo) -> Any:
    """This rank's trainer state in a checkpoint (rank 0's is ``state["trainer"]``)."""
    ranks = state.get("ranks", [])
    if info.world_size != len(ranks) + 1:
        raise APIUsageError(
            f"the checkpoint was written by {len(ranks) + 1} rank(s), this run has "
            f"{info.world_size}; resume with the same --nproc-per-node"
        )
    return state["trainer"] if info.is_main else ranks[info.rank - 1]
