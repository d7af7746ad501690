"""The zoo benchmark: fugu PPO and SB3 PPO (rl-zoo3's tuned hyperparameters) on the classic
control suite, in the same run, interleaved by seed.

Each task names a Gymnasium (or fugu) env, the return that counts as reaching it (Gymnasium's
``reward_threshold`` where it has one), SB3's rl-zoo3 settings (``hyperparams/ppo.yml``:
vector envs, horizon, epochs, discounts, ``VecNormalize`` where the zoo normalises) and
fugu's overrides of its presets (none by default: fugu's default preset is meant to learn the
suite untuned). A run reports the env steps and wall-clock at which the mean of the last 100
training episodes first reached the threshold, the final mean of the last 100 training
episodes and the mean of greedy evaluation episodes.

``benchmarks/zoo.py`` and ``fugu bench zoo`` print one JSON line per run and one summary per
task.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError, missing_dependency
from fugu.train.benchmark import sb3_threshold_callback

__all__ = ["TASKS", "ZooConfig", "ZooTask", "run_zoo", "summarize_task"]


@dataclass(frozen=True)
class ZooTask:
    """One benchmark task."""

    env_id: str
    """The env both libraries train on (SB3 through Gymnasium; fugu ids only for fugu)."""
    threshold: float
    """Mean return over the last 100 training episodes that counts as reaching the task."""
    sb3: dict[str, Any] = field(default_factory=dict)
    """rl-zoo3's PPO settings (``None`` entries: SB3's defaults)."""
    fugu_overrides: dict[str, Any] = field(default_factory=dict)
    """Overrides of fugu's presets for this env."""
    fugu_timesteps: int | None = None
    """fugu's step budget (``None``: the same as SB3's)."""


def _zoo(n_envs: int, n_timesteps: float, **settings: Any) -> dict[str, Any]:
    return {"n_envs": n_envs, "n_timesteps": int(n_timesteps), **settings}


TASKS: dict[str, ZooTask] = {
    "CartPole-v1": ZooTask(
        "CartPole-v1", 475.0,
        _zoo(8, 1e5, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
             ent_coef=0.0, learning_rate="lin_1e-3", clip_range="lin_0.2"),
        fugu_timesteps=200_000,
    ),
    "Acrobot-v1": ZooTask(
        "Acrobot-v1", -100.0,
        _zoo(16, 1e6, normalize=True, n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4,
             ent_coef=0.0),
        fugu_timesteps=200_000,
    ),
    "MountainCar-v0": ZooTask(
        "MountainCar-v0", -110.0,
        _zoo(16, 1e6, normalize=True, n_steps=16, gae_lambda=0.98, gamma=0.99, n_epochs=4,
             ent_coef=0.0),
    ),
    "MountainCarContinuous-v0": ZooTask(
        "MountainCarContinuous-v0", 90.0,
        _zoo(1, 2e4, normalize=True, batch_size=256, n_steps=8, gamma=0.9999,
             learning_rate=7.77e-05, ent_coef=0.00429, clip_range=0.1, n_epochs=10,
             gae_lambda=0.9, max_grad_norm=5.0, vf_coef=0.19, use_sde=True,
             policy_kwargs={"log_std_init": -3.29, "ortho_init": False}),
    ),
    "Pendulum-v1": ZooTask(
        "Pendulum-v1", -200.0,
        _zoo(4, 1e5, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
             learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4),
    ),
    "LunarLander-v3": ZooTask(
        "LunarLander-v3", 200.0,
        _zoo(16, 1e6, n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999, n_epochs=4,
             ent_coef=0.01),
    ),
}  # fmt: skip
"""The suite, with rl-zoo3's settings for SB3 (LunarLander needs Box2D installed)."""


@dataclass(frozen=True)
class ZooConfig:
    """What :func:`run_zoo` measures."""

    tasks: tuple[str, ...] = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")
    """Task names (keys of :data:`TASKS`)."""
    seeds: int = 3
    """Seeds per implementation."""
    impls: tuple[str, ...] = ("fugu", "sb3")
    """``fugu`` and/or ``sb3``."""
    time_budget_s: float = 600.0
    """Wall-clock cap of one run (reported as not reached when hit)."""
    eval_episodes: int = 20
    """Greedy evaluation episodes after training."""

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise APIUsageError(f"unknown zoo tasks {unknown}; known: {', '.join(TASKS)}")
        if set(self.impls) - {"fugu", "sb3"} or not self.impls:
            raise APIUsageError(f"impls must be among 'fugu', 'sb3', got {self.impls}")
        if self.seeds < 1:
            raise APIUsageError(f"seeds must be >= 1, got {self.seeds}")


def run_fugu(task: ZooTask, seed: int, config: ZooConfig) -> dict[str, Any]:
    """Train fugu PPO on the task with its default preset; one result row."""
    from fugu.train.evaluate import evaluate_policy
    from fugu.train.experiment import ExperimentConfig
    from fugu.train.run import EpochContext, train

    budget = task.fugu_timesteps or int(task.sb3["n_timesteps"])
    overrides: dict[str, Any] = {
        "logging.jsonl": False, "logging.tensorboard": False, "checkpoint.interval": 0,
        "checkpoint.resume": "never", "train.seed": seed, "ppo.seed": seed,
        "train.total_timesteps": budget, "env.solve_threshold": task.threshold,
        **task.fugu_overrides,
    }  # fmt: skip
    experiment = ExperimentConfig.from_preset(task.env_id, overrides)
    stop = threading.Event()
    start = time.perf_counter()
    captured: dict[str, Any] = {}

    def keep(context: EpochContext) -> None:
        captured["algo"] = context.trainer.algo
        if time.perf_counter() - start > config.time_budget_s:
            stop.set()

    with tempfile.TemporaryDirectory(prefix="fugu-zoo-") as run_dir:
        summary = train(experiment, callbacks=[keep], run_dir=run_dir, stop=stop, quiet=True)
    from fugu.bridges.entry import make_env

    env = make_env(task.env_id)
    try:
        result = evaluate_policy(env, captured["algo"], config.eval_episodes, seed=10_000 + seed)
    finally:
        env.close()
    return {
        "impl": "fugu", "task": task.env_id, "seed": seed, "timesteps": summary.timesteps,
        "wall_s": summary.wall_s, "sps": summary.sps, "reached": summary.solved,
        "steps_to_threshold": summary.steps_to_solve,
        "time_to_threshold_s": summary.time_to_solve_s,
        "final_return": summary.final_return, "greedy_return": result.mean_return,
    }  # fmt: skip


def run_sb3(task: ZooTask, seed: int, config: ZooConfig) -> dict[str, Any]:
    """Train SB3 PPO with rl-zoo3's settings on the task; one result row."""
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
        from stable_baselines3.common.logger import configure
        from stable_baselines3.common.vec_env import VecNormalize
    except ImportError as error:  # pragma: no cover - sb3 is in the dev extras
        raise missing_dependency("stable_baselines3", "sb3") from error

    settings = dict(task.sb3)
    n_envs, budget = settings.pop("n_envs"), settings.pop("n_timesteps")
    normalize = settings.pop("normalize", False)
    for key in ("learning_rate", "clip_range"):
        value = settings.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            initial = float(value[4:])
            settings[key] = lambda remaining, initial=initial: remaining * initial

    env = make_vec_env(task.env_id, n_envs=n_envs, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=settings.get("gamma", 0.99))
    callback = sb3_threshold_callback(task.threshold, config.time_budget_s, min_episodes=100)
    with tempfile.TemporaryDirectory(prefix="fugu-zoo-sb3-") as log_dir:
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings)
        model.set_logger(configure(log_dir, []))
        start = time.perf_counter()
        model.learn(total_timesteps=budget, callback=callback)
        wall = time.perf_counter() - start
    if normalize:
        env.training, env.norm_reward = False, False
    greedy, _ = evaluate_policy(model, env, n_eval_episodes=config.eval_episodes)
    env.close()
    return {
        "impl": "sb3", "task": task.env_id, "seed": seed, "timesteps": int(model.num_timesteps),
        "wall_s": wall, "sps": model.num_timesteps / wall if wall else 0.0,
        "reached": callback.steps is not None, "steps_to_threshold": callback.steps,
        "time_to_threshold_s": callback.time, "final_return": callback.final,
        "greedy_return": float(greedy),
    }  # fmt: skip


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not np.isnan(v)]
    return float(statistics.median(present)) if present else None


def summarize_task(task: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per implementation for one task, and the wall-clock ratio SB3 / fugu.

    Example:
        >>> rows = [{"impl": "fugu", "task": "t", "reached": True, "time_to_threshold_s": 2.0,
        ...          "steps_to_threshold": 10, "final_return": 1.0, "greedy_return": 1.0,
        ...          "sps": 5.0},
        ...         {"impl": "sb3", "task": "t", "reached": True, "time_to_threshold_s": 30.0,
        ...          "steps_to_threshold": 8, "final_return": 0.5, "greedy_return": 0.9,
        ...          "sps": 1.0}]
        >>> summarize_task("t", rows)["ratio_time_to_threshold_sb3_vs_fugu"]
        15.0
    """
    summary: dict[str, Any] = {"impl": "summary", "task": task}
    for impl in ("fugu", "sb3"):
        mine = [r for r in rows if r["impl"] == impl and r["task"] == task]
        if not mine:
            continue
        summary[f"{impl}_reached"] = f"{sum(bool(r['reached']) for r in mine)}/{len(mine)}"
        for key in ("final_return", "greedy_return", "steps_to_threshold",
                    "time_to_threshold_s", "sps"):  # fmt: skip
            summary[f"{impl}_median_{key}"] = _median([r[key] for r in mine])
    fugu_t = summary.get("fugu_median_time_to_threshold_s")
    sb3_t = summary.get("sb3_median_time_to_threshold_s")
    summary["ratio_time_to_threshold_sb3_vs_fugu"] = sb3_t / fugu_t if fugu_t and sb3_t else None
    return summary


def run_zoo(config: ZooConfig) -> Iterator[dict[str, Any]]:
    """Yield one row per (task, seed, implementation), interleaved, then a summary per task."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    try:
        for name in config.tasks:
            task = TASKS[name]
            for seed in range(config.seeds):
                for impl in config.impls:
                    row = (run_fugu if impl == "fugu" else run_sb3)(task, seed, config)
                    rows.append(row)
                    yield row
            yield summarize_task(task.env_id, rows)
    finally:
        torch.set_num_threads(previous)
