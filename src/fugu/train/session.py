"""One training session: run epochs, log them, detect solving, write checkpoints, summarise.

After every epoch a :class:`Session` logs the trainer's metrics (plus ``env/mean_return_100``
and the callbacks' metrics) to every sink, every ``logging.histogram_interval`` epochs
histograms of weights, gradients and actions, every ``logging.video_interval`` epochs an
episode video, and checks the solve criterion: the mean return of exactly the last 100
episodes ``>= env.solve_threshold``. ``train.stop_on_solve`` ends the run there once the
policy's play confirms it (:data:`SOLVE_CHECK_EPISODES` episodes on a fresh env, deterministic
unless ``train.solve_check_deterministic`` is false: a sampling policy can meet the threshold
while its mode does not).
Checkpoints hold every module the algorithm owns, by name (``<module>.<parameter>`` in the
safetensors file), and the trainer's other state.

Besides the newest ``checkpoint.keep_last`` checkpoints, the run always keeps its **best**
one in ``checkpoints/best/``: the weights of the epoch with the highest mean return over a
full window of 100 episodes, or the confirmed solving policy of a run stopped on solve (kept
in memory when they improve, written with the next checkpoint). It holds weights for
evaluation and inference, not the trainer's state: resume from the run dir, not from ``best``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from fugu.checkpoint import prune_checkpoints, save_checkpoint
from fugu.core.errors import APIUsageError
from fugu.loggers import Logger
from fugu.train.diagnostics import (
    GradientRecorder,
    log_histograms,
    log_novelty_heatmaps,
    log_video,
)
from fugu.train.distributed import dist_info, gather_objects
from fugu.train.episodes import ScoreWindow
from fugu.train.experiment import ExperimentConfig
from fugu.train.loop import Trainer
from fugu.train.validate import describe_space

__all__ = [
    "BEST_DIR",
    "SOLVE_CHECK_EPISODES",
    "SOLVE_WINDOW",
    "Callback",
    "EpochContext",
    "Progress",
    "RunRecord",
    "Session",
    "TrainSummary",
    "every",
    "load_module_weights",
    "module_weights",
]

SOLVE_WINDOW = 100
"""Episodes averaged by the solve criterion."""
SOLVE_CHECK_EPISODES = 100
"""Evaluation episodes (as many rows, played at once) that confirm a solve before
``train.stop_on_solve`` stops: the same window as the solve criterion, since 10 episodes of a
noisy env (pendulum) miss the threshold by chance."""
SOLVE_CHECK_INTERVAL = 5
"""Epochs between two such checks after one that failed."""
BEST_DIR = "best"
"""Subdirectory of ``checkpoints/`` holding the best checkpoint (``best/step-<N>/``)."""


def every(epoch: int, interval: int) -> bool:
    """Whether something done every ``interval`` epochs (0: never) is due at ``epoch``."""
    return interval > 0 and epoch % interval == 0


def module_weights(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every module's ``state_dict`` in one flat dict, keys ``<module>.<key>``.

    Example:
        >>> sorted(module_weights({"q": torch.nn.Linear(1, 1)}))
        ['q.bias', 'q.weight']
    """
    weights = {}
    for name, module in modules.items():
        if "." in name:
            raise APIUsageError(f"module names must not contain '.', got {name!r}")
        for key, tensor in module.state_dict().items():
            weights[f"{name}.{key}"] = tensor
    return weights


def load_module_weights(
    modules: Mapping[str, torch.nn.Module], weights: Mapping[str, torch.Tensor]
) -> None:
    """Load :func:`module_weights` output back into the modules (strictly: every key).

    Raises:
        APIUsageError: A module of the algorithm has no weights in ``weights`` (a checkpoint
            of another algorithm).
    """
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in weights.items():
        name, _, rest = key.partition(".")
        grouped.setdefault(name, {})[rest] = tensor
    missing = [name for name in modules if name not in grouped]
    if missing:
        raise APIUsageError(
            f"the checkpoint has no weights for module(s) {missing} (it holds "
            f"{sorted(grouped)}): was it written by another algorithm?"
        )
    for name, module in modules.items():
        try:
            module.load_state_dict(grouped[name])
        except RuntimeError as error:
            raise APIUsageError(
                f"the checkpoint's {name!r} weights do not fit this env's spaces (was it "
                f"trained on another env?): {str(error).splitlines()[-1].strip()}"
            ) from None


@dataclass
class EpochContext:
    """What a callback sees after each epoch.

    Attributes:
        trainer: The :class:`~fugu.train.loop.Trainer` (its ``algo``, counters, episodes).
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
    """Whether the run has met the solve threshold at some epoch (see ``solved_now``)."""
    run_dir: Path
    steps_to_solve: int | None = None
    """The step at which it was first solved."""
    solve_threshold: float = math.inf
    stopped_on_solve: bool = False
    """This epoch confirmed the solve and ``train.stop_on_solve`` ends the run after it."""
    solve_metric: str = "episode_return"
    """What the threshold is compared with (``env.solve_metric``)."""
    solve_score: float = math.nan
    """The current mean of ``solve_metric`` (last 100 episodes); the mean return for
    ``episode_return``."""

    @property
    def solved_now(self) -> bool:
        """Whether the current solve score (last 100 episodes) meets the threshold."""
        score = self.mean_return if self.solve_metric == "episode_return" else self.solve_score
        return score >= self.solve_threshold

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
    solved_at_end: bool = False
    """Whether ``final_return`` (the last 100 episodes) still meets the threshold; ``solved``
    says the run met it at some point (``steps_to_solve``: first solved at)."""
    best_return: float | None = None
    """The highest mean return over a full 100-episode window, at ``best_step``."""
    best_step: int | None = None
    best_checkpoint: str | None = None
    """The checkpoint of ``best_return`` (``checkpoints/best/step-<N>``)."""
    stopped_on_solve: bool = False
    solve_check_return: float | None = None
    """With ``train.stop_on_solve``: the solve score of the evaluation that confirmed the
    solve."""
    solve_check_deterministic: bool = True
    """Whether that evaluation took the policy's most likely actions (``False``: it sampled;
    ``train.solve_check_deterministic``)."""
    solve_metric: str = "episode_return"
    """What ``env.solve_threshold`` was compared with."""
    final_score: float | None = None
    """The last 100 episodes' mean of ``solve_metric`` (``final_return`` for the return)."""
    warmup_s: float = 0.0
    """Seconds of this session's first epoch, which includes compiling (first run) or loading
    (later runs) the env's numba kernels; ``sps`` and ``time_to_solve_s`` exclude it."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@dataclass
class RunRecord:
    """The run's own bookkeeping, carried in checkpoints (``state["run"]``)."""

    elapsed_s: float = 0.0
    time_to_solve_s: float | None = None
    steps_to_solve: int | None = None
    best_return: float | None = None
    best_step: int | None = None
    best_checkpoint: str | None = None
    solve_check_return: float | None = None


class Session:
    """One call of :func:`~fugu.train.run.train`: runs epochs, logs them, writes checkpoints."""

    def __init__(
        self,
        config: ExperimentConfig,
        trainer: Trainer,
        directory: Path,
        record: RunRecord,
        callbacks: list[Callback],
    ) -> None:
        self.config = config
        self.trainer = trainer
        self.directory = directory
        self.record = record
        self.callbacks = callbacks
        self.grads = GradientRecorder(trainer.algo.modules())
        self.start = time.perf_counter()
        self.start_step = trainer.global_step
        self.last_saved: Path | None = None
        self.saved_epoch = -1
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.stopped_on_solve = False
        self.warmup_s: float | None = None
        self.next_solve_check = 0
        self.warm_step = trainer.global_step
        metric = config.env.solve_metric
        window = min(SOLVE_WINDOW, config.train.episode_window)
        self.scores = None if metric == "episode_return" else ScoreWindow(metric, window)
        """The windowed info score, when the solve metric is not the return."""

    def solve_score(self, metrics: Mapping[str, float]) -> tuple[float, bool]:
        """The current solve score and whether its window is full (from this epoch's
        ``metrics`` and the trainer's episode record)."""
        trainer = self.trainer
        if self.scores is None:
            full = len(trainer.episodes.returns) >= min(
                SOLVE_WINDOW, self.config.train.episode_window
            )
            return trainer.episodes.mean_return(SOLVE_WINDOW), full
        key = self.scores.key
        if metrics.get("env/num_episodes", 0.0) > 0 and f"env/{key}" not in metrics:
            reported = sorted(
                k.removeprefix("env/")
                for k in metrics
                if k.startswith("env/") and k != "env/num_episodes"
            )
            raise APIUsageError(
                f"env.solve_metric is {key!r} but {self.config.env.id} reports no {key!r} in "
                f"its episode infos (it reports {reported}); set env.solve_metric to one of "
                "those or to 'episode_return'"
            )
        self.scores.add(dict(metrics))
        return self.scores.mean(), self.scores.full

    def elapsed(self) -> float:
        """Seconds of training of the whole run (previous sessions included), each session's
        first epoch (the warm-up: kernel compiling or loading) excluded."""
        if self.warmup_s is None:
            return self.record.elapsed_s
        return self.record.elapsed_s + time.perf_counter() - self.start - self.warmup_s

    def epoch(self, logger: Logger) -> Progress:
        """Train one epoch, run callbacks, log everything; the epoch's :class:`Progress`."""
        config, trainer, record = self.config, self.trainer, self.record
        self.grads.active = every(trainer.epoch + 1, config.logging.histogram_interval)
        metrics = dict(trainer.train_epoch())
        self.grads.active = False
        if self.warmup_s is None:
            self.warmup_s = time.perf_counter() - self.start
            self.warm_step = trainer.global_step
        mean_return = trainer.episodes.mean_return(SOLVE_WINDOW)
        metrics["env/mean_return_100"] = mean_return
        full = len(trainer.episodes.returns) >= min(SOLVE_WINDOW, config.train.episode_window)
        score, score_full = self.solve_score(metrics)
        if self.scores is not None:
            metrics[f"env/mean_{self.scores.key}_100"] = score
        if score_full and record.steps_to_solve is None and score >= config.solve_threshold:
            record.time_to_solve_s = self.elapsed()
            record.steps_to_solve = trainer.global_step
        if (
            config.train.stop_on_solve
            and record.steps_to_solve is not None
            and score_full
            and score >= config.solve_threshold
            and trainer.epoch >= self.next_solve_check
        ):
            verified = self.verify_solved()
            metrics["eval/solve_check_return"] = verified
            if verified >= config.solve_threshold:
                self.stopped_on_solve = True
                record.solve_check_return = verified
            else:  # the sampling policy solves it, its mode does not yet: train on
                self.next_solve_check = trainer.epoch + SOLVE_CHECK_INTERVAL
        improved = record.best_return is None or mean_return > record.best_return
        if self.stopped_on_solve or (full and not math.isnan(mean_return) and improved):
            record.best_return = mean_return
            record.best_step = trainer.global_step
            self.best_weights = {
                key: tensor.detach().clone()
                for key, tensor in module_weights(trainer.algo.modules()).items()
            }
        metrics["train/solved"] = float(record.steps_to_solve is not None)
        step = trainer.global_step
        context = EpochContext(
            trainer, config, self.directory, trainer.epoch, step, metrics, logger
        )
        for callback in self.callbacks:
            extra = callback(context)
            if extra:
                metrics.update({key: float(value) for key, value in extra.items()})
        if every(trainer.epoch, config.logging.histogram_interval):
            log_histograms(logger, self.grads.grads, trainer, step)
            self.grads.grads = {}
        if every(trainer.epoch, config.logging.video_interval):
            metrics.update(log_video(logger, config, trainer.algo, step))
        if every(trainer.epoch, config.logging.heatmap_interval):
            log_novelty_heatmaps(logger, trainer, step)
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
            record.steps_to_solve,
            config.solve_threshold,
            self.stopped_on_solve,
            config.env.solve_metric,
            score,
        )

    def verify_solved(self) -> float:
        """Mean solve score (return, or ``env.solve_metric``) of :data:`SOLVE_CHECK_EPISODES`
        episodes on a fresh env (the check ``train.stop_on_solve`` makes before stopping:
        the first episode of every row, so that short ones are not favoured),
        deterministic or sampled as ``train.solve_check_deterministic`` says; ``inf`` when
        the env cannot be built alone (the training criterion then decides)."""
        from fugu.core.registry import make
        from fugu.train.evaluate import evaluate_policy
        from fugu.vector import EnvFactory

        config = self.config
        kwargs = dict(config.env.kwargs)
        if EnvFactory(config.env.id, kwargs).accepts("num_envs"):
            kwargs["num_envs"] = SOLVE_CHECK_EPISODES
        try:
            env = make(config.env.id, **kwargs)
        except Exception:  # an env that needs its trainer's setup: trust the training mean
            return math.inf
        try:
            result = evaluate_policy(
                env,
                self.trainer.algo,
                SOLVE_CHECK_EPISODES,
                deterministic=config.train.solve_check_deterministic,
                seed=config.train.seed + 1_000_003,
                each_row_once=True,
            )
        finally:
            env.close()
        if self.scores is None:
            return result.mean_return
        return result.info_means.get(self.scores.key, math.inf)

    def metadata(self) -> dict[str, Any]:
        """The manifest's metadata: env id, algorithm, and the env's single spaces (checked
        before a checkpoint is evaluated or loaded on an env)."""
        env = self.trainer.envs[0]
        return {
            "env": self.config.env.id,
            "algo": self.config.algo,
            "spaces": {
                "observation": describe_space(env.single_observation_space),
                "action": describe_space(env.single_action_space),
            },
        }

    def save(self) -> Path:
        """Write a checkpoint of the trainer and the record; prune old ones."""
        trainer = self.trainer
        info = dist_info()
        trainer_state = trainer.state_dict(include_modules=False)
        ranks = gather_objects(trainer_state) if info.enabled else None
        if not info.is_main:  # rank 0 writes every rank's state
            self.saved_epoch = trainer.epoch
            return self.directory / "checkpoints"
        state: dict[str, Any] = {
            "trainer": trainer_state,
            "run": {**asdict(self.record), "elapsed_s": self.elapsed()},
        }
        if ranks is not None:
            state["ranks"] = ranks[1:]
        self.last_saved = save_checkpoint(
            self.directory / "checkpoints",
            weights=module_weights(trainer.algo.modules()),
            state=state,
            counters={"global_step": trainer.global_step, "epoch": trainer.epoch},
            config=self.config.to_dict(),
            metadata=self.metadata(),
        )
        prune_checkpoints(self.directory / "checkpoints", self.config.checkpoint.keep_last)
        self.saved_epoch = trainer.epoch
        self.save_best()
        return self.last_saved

    def save_best(self, final: bool = False) -> Path | None:
        """Write the best weights seen (if newer than the written ones) to ``checkpoints/best``.

        With ``final`` and no full 100-episode window ever seen, the current weights are
        written, so a finished run always has a ``best`` checkpoint.
        """
        record, trainer = self.record, self.trainer
        if not dist_info().is_main:
            return None
        if self.best_weights is None:
            if not final or record.best_checkpoint is not None:
                return None
            self.best_weights = module_weights(trainer.algo.modules())
            record.best_step = trainer.global_step
        best_dir = self.directory / "checkpoints" / BEST_DIR
        path = save_checkpoint(
            best_dir,
            weights=self.best_weights,
            state={"run": asdict(self.record), "best": True},
            counters={"global_step": int(record.best_step or 0), "epoch": trainer.epoch},
            config=self.config.to_dict(),
            metadata={**self.metadata(), "best_return": record.best_return, "kind": "best"},
        )
        prune_checkpoints(best_dir, 1)
        record.best_checkpoint = str(path)
        self.best_weights = None
        return path

    def summary(
        self, interrupted: bool, resumed_from: Path | None, skipped: list[str]
    ) -> TrainSummary:
        """The session's :class:`TrainSummary`."""
        config, trainer, record = self.config, self.trainer, self.record
        wall = time.perf_counter() - self.start
        warmup = self.warmup_s or 0.0
        timed_steps = trainer.global_step - self.warm_step
        if timed_steps <= 0 or wall - warmup <= 0:  # one epoch: only the warm-up to time
            timed_steps, warmup = trainer.global_step - self.start_step, 0.0
        final = trainer.episodes.mean_return(SOLVE_WINDOW)
        final_return = None if math.isnan(final) else final
        final_score = final_return
        if self.scores is not None:
            final_score = None if math.isnan(self.scores.mean()) else self.scores.mean()
        return TrainSummary(
            env=config.env.id,
            algo=config.algo,
            seed=config.train.seed,
            timesteps=trainer.global_step,
            total_timesteps=config.train.total_timesteps,
            epochs=trainer.epoch,
            wall_s=wall,
            sps=timed_steps / (wall - warmup) if wall - warmup > 0 else 0.0,
            final_return=final_return,
            solved=record.steps_to_solve is not None,
            time_to_solve_s=record.time_to_solve_s,
            steps_to_solve=record.steps_to_solve,
            checkpoint=None if self.last_saved is None else str(self.last_saved),
            run_dir=str(self.directory),
            interrupted=interrupted,
            resumed_from=None if resumed_from is None else str(resumed_from),
            skipped_checkpoints=skipped,
            solved_at_end=final_score is not None and final_score >= config.solve_threshold,
            best_return=record.best_return,
            best_step=record.best_step,
            best_checkpoint=record.best_checkpoint,
            stopped_on_solve=self.stopped_on_solve,
            solve_check_return=record.solve_check_return,
            solve_check_deterministic=config.train.solve_check_deterministic,
            solve_metric=config.env.solve_metric,
            final_score=final_score,
            warmup_s=warmup,
        )

    def close(self) -> None:
        """Remove the gradient hooks."""
        self.grads.close()
