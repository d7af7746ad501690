"""The zoo benchmark's runners produce comparable rows (tiny budgets; real runs: benchmarks/)."""

from __future__ import annotations

import pytest
import torch

from fugu.core.errors import APIUsageError
from fugu.train.zoo import TASKS, ZooConfig, ZooTask, run_fugu, run_sb3, summarize_task

torch.set_num_threads(1)

KEYS = {"impl", "task", "seed", "timesteps", "wall_s", "sps", "reached", "steps_to_threshold",
        "time_to_threshold_s", "final_return", "greedy_return"}  # fmt: skip


def test_runners_report_the_same_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))
    task = ZooTask(
        "CartPole-v1", 15.0,
        {"n_envs": 2, "n_timesteps": 256, "n_steps": 32, "batch_size": 32, "n_epochs": 1,
         "learning_rate": "lin_1e-3", "normalize": True},
        fugu_overrides={"env.num_envs": 2, "train.num_steps": 32}, fugu_timesteps=256,
    )  # fmt: skip
    config = ZooConfig(eval_episodes=2, time_budget_s=60)
    rows = [run_fugu(task, 0, config)]
    pytest.importorskip("stable_baselines3")
    rows.append(run_sb3(task, 0, config))
    for row in rows:
        assert set(row) == KEYS and row["timesteps"] >= 256 and row["greedy_return"] > 0
    summary = summarize_task("CartPole-v1", rows)
    assert {"fugu_reached", "sb3_reached", "ratio_time_to_threshold_sb3_vs_fugu"} <= set(summary)


def test_config_checks_and_the_suite():
    assert {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"} <= set(TASKS)
    assert TASKS["Acrobot-v1"].sb3["normalize"] is True  # rl-zoo3 normalises Acrobot
    with pytest.raises(APIUsageError, match="unknown zoo tasks"):
        ZooConfig(tasks=("Pong-v5",))
    with pytest.raises(APIUsageError, match="impls"):
        ZooConfig(impls=("cleanrl",))
