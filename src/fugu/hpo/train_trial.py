"""Trials that are training runs: :func:`make_train_trial` wraps :func:`fugu.train.run.train`.

Each trial applies its params (dotted config keys) as overrides of a base
:class:`~fugu.train.experiment.ExperimentConfig`, trains in its own run dir under
``trials_dir`` (so its metrics land in its ``metrics.jsonl``, TensorBoard events and, when
``logging.wandb`` is on, a W&B run grouped under the sweep), and reports its score (a metric,
by default the mean return of the last 100 episodes) at ``num_reports`` points along its
budget. When the searcher says so, the run is stopped after its current epoch.

Cost is the run's training time in seconds (``cost="seconds"``: the trainer's own clock, without
building the envs and the policy, which would dominate short runs) or env steps
(``cost="steps"``, deterministic).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fugu.core.errors import APIUsageError
from fugu.hpo.sweep import Report, TrialFn
from fugu.train.experiment import ExperimentConfig, section_type, valid_sections
from fugu.train.fields import field_types

__all__ = ["make_train_trial", "params_to_overrides"]

COSTS = ("seconds", "steps")


def params_to_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    """Cast each param to its config field's type (a float budget for an int field is rounded).

    Example:
        >>> params_to_overrides({"train.total_timesteps": 2.5e4, "ppo.gamma": 0.99})
        {'train.total_timesteps': 25000, 'ppo.gamma': 0.99}
    """
    overrides: dict[str, Any] = {}
    for key, value in params.items():
        section, _, name = key.partition(".")
        types = field_types(section_type(section)) if section in valid_sections()[:-1] else {}
        if name not in types:
            raise APIUsageError(
                f"sweep parameter {key!r} is not a config key (SECTION.KEY with SECTION one of "
                f"{', '.join(valid_sections()[:-1])}); fix the preset's [sweep.parameters]"
            )
        kind = types[name]
        overrides[key] = round(value) if kind is int else value
    return overrides


def make_train_trial(
    base: ExperimentConfig,
    trials_dir: str | Path,
    *,
    metric: str = "env/mean_return_100",
    cost: str = "seconds",
    num_reports: int = 5,
    wandb_group: str | None = None,
) -> TrialFn:
    """A ``trial_fn`` for :func:`fugu.hpo.sweep.run_sweep` that trains PPO.

    Args:
        base: The experiment every trial starts from (the env's preset and overrides).
        trials_dir: Parent of the trials' run dirs (``trial-0000``, ``trial-0001``, ...).
        metric: The epoch metric used as score (``summary.final_return`` at the end when it is
            the default ``env/mean_return_100``).
        cost: ``"seconds"`` or ``"steps"``.
        num_reports: Observations per run, evenly spaced along its budget (the last at the end).
        wandb_group: W&B group of the trials (when ``logging.wandb`` is on).
    """
    if cost not in COSTS:
        raise APIUsageError(f"cost must be one of {COSTS}, got {cost!r}")
    if num_reports < 1:
        raise APIUsageError(f"num_reports must be >= 1, got {num_reports}")
    from fugu.train.run import Progress, train

    directory = Path(trials_dir)

    def trial(params: dict[str, Any], report: Report) -> dict[str, Any]:
        config = base.with_overrides(params_to_overrides(params))
        config = config.with_overrides(
            {"checkpoint.resume": "never", "checkpoint.interval": 0, "checkpoint.keep_last": 1}
        )
        if wandb_group is not None:
            config = config.with_overrides({"logging.wandb_group": wandb_group})
        index = len(list(directory.glob("trial-*"))) if directory.exists() else 0
        run_dir = directory / f"trial-{index:04d}"
        total = config.train.total_timesteps
        marks = [total * (k + 1) / num_reports for k in range(num_reports - 1)]
        stop = threading.Event()
        last_score = math.nan

        def on_progress(progress: Progress) -> None:
            nonlocal last_score
            value = progress.metrics.get(metric)
            if value is None:
                return
            last_score = float(value)
            if marks and progress.global_step >= marks[0]:
                while marks and progress.global_step >= marks[0]:
                    marks.pop(0)
                spent = progress.elapsed_s if cost == "seconds" else float(progress.global_step)
                if math.isfinite(last_score) and report(progress.global_step, last_score, spent):
                    stop.set()

        summary = train(config, run_dir=run_dir, quiet=True, on_progress=on_progress, stop=stop)
        score = last_score
        if metric == "env/mean_return_100":
            score = math.nan if summary.final_return is None else float(summary.final_return)
        spent = summary.wall_s if cost == "seconds" else float(summary.timesteps)
        return {"score": score, "cost": spent, "steps": summary.timesteps}

    return trial
