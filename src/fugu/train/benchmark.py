"""Training benchmark: fugu PPO on ``cartpole-v1`` against Stable-Baselines3 PPO, same run.

Both train CartPole from scratch for several seeds, interleaved (fugu seed 0, SB3 seed 0, fugu
seed 1, ...), so a noisy machine affects both alike. Each run reports its env steps per second,
and the wall-clock time and env steps until the mean return of the last 100 episodes reaches
475 (CartPole-v1's solve threshold), then stops (unless ``stop_on_solve=False``).

* fugu: :func:`fugu.train.run.train` with the ``cartpole-v1`` preset (its native CartPole),
  loggers off, in a temporary run dir.
* SB3: ``PPO("MlpPolicy")`` on Gymnasium's ``CartPole-v1`` with rl-zoo3's tuned
  hyperparameters (``hyperparams/ppo.yml``: 8 envs, n_steps 32, batch 256, gae_lambda 0.8,
  gamma 0.98, 20 epochs, ent_coef 0, linear learning rate 1e-3 and clip range 0.2, 1e5 steps),
  capped by a step and a time budget; its logger writes to a temporary directory.

Both use the same number of torch threads (``torch_threads``).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fugu.core.errors import APIUsageError, missing_dependency

__all__ = [
    "SB3_CARTPOLE_HYPERPARAMS",
    "TrainBenchConfig",
    "run_fugu",
    "run_sb3",
    "run_train_benchmark",
    "summarize",
]

SOLVE_THRESHOLD = 475.0
SB3_CARTPOLE_HYPERPARAMS: dict[str, Any] = {
    "n_envs": 8,
    "n_timesteps": 100_000,
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": 1e-3,  # linear schedule to 0 (rl-zoo3: lin_1e-3)
    "clip_range": 0.2,  # linear schedule to 0 (rl-zoo3: lin_0.2)
}
"""rl-zoo3's ``ppo.yml`` entry for CartPole-v1."""


@dataclass(frozen=True)
class TrainBenchConfig:
    """What :func:`run_train_benchmark` measures."""

    seeds: int = 5
    """Seeds per implementation (0, 1, ...)."""
    impls: tuple[str, ...] = ("fugu", "sb3")
    """Implementations to run: ``fugu``, ``sb3``."""
    fugu_overrides: dict[str, Any] = field(default_factory=dict)
    """Overrides of the ``cartpole-v1`` preset (``{"ppo.learning_rate": 1e-3}``)."""
    fugu_timesteps: int | None = None
    """Step budget of fugu (``None``: the preset's ``train.total_timesteps``)."""
    sb3_timesteps: int = 100_000
    """Step budget of SB3 (rl-zoo3's 1e5)."""
    time_budget_s: float = 600.0
    """Wall-clock cap of one SB3 run (fugu runs are capped by their step budget)."""
    stop_on_solve: bool = True
    """Stop each run once solved (SPS is then measured up to the solve)."""
    torch_threads: int = 1
    """``torch.set_num_threads`` for both."""

    def __post_init__(self) -> None:
        unknown = set(self.impls) - {"fugu", "sb3"}
        if unknown or not self.impls:
            raise APIUsageError(f"impls must be among 'fugu', 'sb3', got {self.impls}")
        if self.seeds < 1:
            raise APIUsageError(f"seeds must be >= 1, got {self.seeds}")


def _row(impl: str, seed: int, steps: int, wall: float, **extra: Any) -> dict[str, Any]:
    return {
        "impl": impl,
        "seed": seed,
        "sps": steps / wall if wall > 0 else 0.0,
        "timesteps": steps,
        "wall_s": wall,
        **extra,
    }


def run_fugu(config: TrainBenchConfig, seed: int) -> dict[str, Any]:
    """Train fugu PPO on ``cartpole-v1`` with ``seed``; one result row."""
    from fugu.train.experiment import ExperimentConfig
    from fugu.train.run import EpochContext, train

    overrides: dict[str, Any] = {
        "logging.jsonl": False,
        "logging.tensorboard": False,
        "logging.wandb": False,
        "checkpoint.interval": 0,
        "checkpoint.keep_last": 1,
        "checkpoint.resume": "never",
        "train.seed": seed,
        "ppo.seed": seed,
        "train.torch_threads": config.torch_threads,
        **config.fugu_overrides,
    }
    if config.fugu_timesteps is not None:
        overrides["train.total_timesteps"] = config.fugu_timesteps
    experiment = ExperimentConfig.from_preset("cartpole-v1", overrides)
    stop = threading.Event()

    def stop_when_solved(context: EpochContext) -> None:
        if config.stop_on_solve and context.metrics.get("train/solved", 0.0) > 0:
            stop.set()

    with tempfile.TemporaryDirectory(prefix="fugu-bench-train-") as run_dir:
        summary = train(
            experiment, callbacks=[stop_when_solved], run_dir=run_dir, stop=stop, quiet=True
        )
    return _row(
        "fugu",
        seed,
        summary.timesteps,
        summary.wall_s,
        solved=summary.solved,
        time_to_solve_s=summary.time_to_solve_s,
        steps_to_solve=summary.steps_to_solve,
        final_return=summary.final_return,
        num_envs=experiment.env.num_envs,
    )


def sb3_threshold_callback(
    threshold: float, budget_s: float, *, stop_on_reach: bool = False, min_episodes: int = 1
) -> Any:
    """An SB3 callback recording when the mean of the last 100 training episodes first reaches
    ``threshold`` (``steps``, ``time``; ``final`` is the latest mean); it stops training after
    ``budget_s`` seconds, or on reaching with ``stop_on_reach``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Threshold(BaseCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()
            self.time: float | None = None
            self.steps: int | None = None
            self.final: float | None = None

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            buffer = self.model.ep_info_buffer
            if buffer:
                self.final = float(statistics.fmean(info["r"] for info in buffer))
                reached = len(buffer) >= min_episodes and self.final >= threshold
                if self.steps is None and reached:
                    self.time = time.perf_counter() - self.start
                    self.steps = int(self.num_timesteps)
                    if stop_on_reach:
                        return False
            return time.perf_counter() - self.start < budget_s

    return Threshold()


def run_sb3(config: TrainBenchConfig, seed: int) -> dict[str, Any]:
    """Train SB3 PPO (rl-zoo3 hyperparameters) on Gymnasium ``CartPole-v1``; one result row."""
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.logger import configure
    except ImportError as error:  # pragma: no cover - sb3 is in the dev extras
        raise missing_dependency("stable_baselines3", "sb3") from error

    hp = SB3_CARTPOLE_HYPERPARAMS

    def linear(initial: float) -> Callable[[float], float]:
        return lambda progress_remaining: progress_remaining * initial

    env = make_vec_env("CartPole-v1", n_envs=hp["n_envs"], seed=seed)
    with tempfile.TemporaryDirectory(prefix="fugu-bench-sb3-") as log_dir:
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=hp["n_steps"],
            batch_size=hp["batch_size"],
            gae_lambda=hp["gae_lambda"],
            gamma=hp["gamma"],
            n_epochs=hp["n_epochs"],
            ent_coef=hp["ent_coef"],
            learning_rate=linear(hp["learning_rate"]),
            clip_range=linear(hp["clip_range"]),
            seed=seed,
            device="cpu",
            verbose=0,
        )
        model.set_logger(configure(log_dir, []))
        callback = sb3_threshold_callback(
            SOLVE_THRESHOLD, config.time_budget_s, stop_on_reach=config.stop_on_solve
        )
        start = time.perf_counter()
        model.learn(total_timesteps=config.sb3_timesteps, callback=callback)
        wall = time.perf_counter() - start
    env.close()
    return _row(
        "sb3",
        seed,
        int(model.num_timesteps),
        wall,
        solved=callback.steps is not None,
        time_to_solve_s=callback.time,
        steps_to_solve=callback.steps,
        final_return=callback.final,
        num_envs=hp["n_envs"],
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One summary row: per-implementation medians and fugu's SPS ratio over SB3.

    Medians of time and steps to solve are over the solved seeds; ``solved`` counts them.

    Example:
        >>> rows = [
        ...     {"impl": "fugu", "sps": 40.0, "solved": True, "time_to_solve_s": 1.0,
        ...      "steps_to_solve": 100, "wall_s": 1.0},
        ...     {"impl": "sb3", "sps": 10.0, "solved": False, "time_to_solve_s": None,
        ...      "steps_to_solve": None, "wall_s": 5.0},
        ... ]
        >>> s = summarize(rows)
        >>> s["ratio_sps_vs_sb3"], s["fugu_solved"], s["sb3_median_time_to_solve_s"]
        (4.0, '1/1', None)
    """
    summary: dict[str, Any] = {"impl": "summary"}
    for impl in sorted({row["impl"] for row in rows}):
        mine = [row for row in rows if row["impl"] == impl]
        summary[f"{impl}_median_sps"] = _median([row["sps"] for row in mine])
        summary[f"{impl}_median_wall_s"] = _median([row["wall_s"] for row in mine])
        summary[f"{impl}_median_time_to_solve_s"] = _median(
            [row["time_to_solve_s"] for row in mine]
        )
        summary[f"{impl}_median_steps_to_solve"] = _median([row["steps_to_solve"] for row in mine])
        summary[f"{impl}_solved"] = f"{sum(bool(row['solved']) for row in mine)}/{len(mine)}"
    fugu_sps, sb3_sps = summary.get("fugu_median_sps"), summary.get("sb3_median_sps")
    summary["ratio_sps_vs_sb3"] = fugu_sps / sb3_sps if fugu_sps and sb3_sps else None
    fugu_t = summary.get("fugu_median_time_to_solve_s")
    sb3_t = summary.get("sb3_median_time_to_solve_s")
    summary["ratio_time_to_solve_sb3_vs_fugu"] = sb3_t / fugu_t if fugu_t and sb3_t else None
    return summary


def run_train_benchmark(config: TrainBenchConfig) -> Iterator[dict[str, Any]]:
    """Yield one row per (seed, implementation), interleaved, then the summary row."""
    previous = torch.get_num_threads()
    torch.set_num_threads(config.torch_threads)
    rows = []
    try:
        for seed in range(config.seeds):
            for impl in config.impls:
                row = run_fugu(config, seed) if impl == "fugu" else run_sb3(config, seed)
                rows.append(row)
                yield row
    finally:
        torch.set_num_threads(previous)
    yield summarize(rows)
