"""The training benchmark: tiny fugu and SB3 runs, JSON lines, summary."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main
from fugu.core.errors import APIUsageError
from fugu.train.benchmark import TrainBenchConfig, run_train_benchmark, summarize

TINY = {"env.num_envs": 4, "train.num_steps": 32, "ppo.update_epochs": 1}
ROW_KEYS = {"impl", "seed", "sps", "solved", "time_to_solve_s", "steps_to_solve", "wall_s"}


def test_tiny_benchmark_yields_rows_and_summary():
    config = TrainBenchConfig(
        seeds=1, fugu_overrides=TINY, fugu_timesteps=256, sb3_timesteps=256, time_budget_s=60
    )
    rows = list(run_train_benchmark(config))
    assert [row["impl"] for row in rows] == ["fugu", "sb3", "summary"]
    for row in rows[:2]:
        assert set(row) >= ROW_KEYS
        assert row["timesteps"] >= 256 and row["sps"] > 0
    assert rows[2]["ratio_sps_vs_sb3"] == pytest.approx(rows[0]["sps"] / rows[1]["sps"])
    json.dumps(rows)


def test_solved_runs_stop_early():
    config = TrainBenchConfig(
        seeds=1,
        impls=("fugu",),
        # the solve criterion needs a full window of episodes: 3 here
        fugu_overrides={**TINY, "env.solve_threshold": 1.0, "train.episode_window": 3},
        fugu_timesteps=1024,
    )
    fugu_row, summary = run_train_benchmark(config)
    assert fugu_row["solved"] and fugu_row["steps_to_solve"] == 128
    assert fugu_row["timesteps"] == 128
    assert summary["fugu_solved"] == "1/1" and summary["ratio_sps_vs_sb3"] is None


def test_summary_medians():
    rows = [
        {
            "impl": "fugu",
            "sps": s,
            "solved": True,
            "time_to_solve_s": t,
            "steps_to_solve": 10,
            "wall_s": 1.0,
        }
        for s, t in ((10.0, 1.0), (30.0, 3.0), (20.0, 2.0))
    ] + [
        {
            "impl": "sb3",
            "sps": 5.0,
            "solved": True,
            "time_to_solve_s": 8.0,
            "steps_to_solve": 20,
            "wall_s": 9.0,
        }
    ]
    summary = summarize(rows)
    assert summary["fugu_median_sps"] == 20.0 and summary["ratio_sps_vs_sb3"] == 4.0
    assert summary["ratio_time_to_solve_sb3_vs_fugu"] == 4.0
    assert summary["fugu_solved"] == "3/3"


def test_bad_configs():
    with pytest.raises(APIUsageError, match="impls"):
        TrainBenchConfig(impls=("rllib",))
    with pytest.raises(APIUsageError, match="seeds"):
        TrainBenchConfig(seeds=0)


def test_cli(capsys):
    code = main(
        ["bench", "train", "--seeds", "1", "--impls", "fugu", "--fugu-timesteps", "128"]
        + [f"--set={key}={value}" for key, value in TINY.items()]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["impl"] for line in lines] == ["fugu", "summary"]
    assert main(["bench", "train", "--set", "nokey"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
