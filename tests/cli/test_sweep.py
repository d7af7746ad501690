"""``fugu sweep``: a tiny real sweep on cartpole-v1, resume, outputs, errors, help."""

from __future__ import annotations

import json

import pytest

from fugu.cli.main import main

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - python 3.10
    import tomli as tomllib

PRESET = """
[env]
num_envs = 4
[train]
total_timesteps = 1024
num_steps = 32
[logging]
tensorboard = false
[sweep]
budget = "train.total_timesteps"
[sweep.parameters]
"ppo.learning_rate" = { distribution = "log", min = 1e-4, max = 1e-2 }
"ppo.update_epochs" = { distribution = "int_uniform", min = 1, max = 4 }
"train.total_timesteps" = { distribution = "log", min = 512, max = 1024 }
"""


@pytest.fixture
def preset(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    path = tmp_path / "preset.toml"
    path.write_text(PRESET)
    return path


def test_sweep_runs_trains_and_resumes(tmp_path, preset, capsys):
    sweep_dir = tmp_path / "sweep"
    argv = [
        "sweep",
        "cartpole-v1",
        "--preset",
        str(preset),
        "--sweep-dir",
        str(sweep_dir),
        "--cost",
        "steps",
        "--num-reports",
        "2",
    ]
    assert main([*argv, "--max-runs", "2", "--policy.hidden-size", "16"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    # live progress on stderr: one line per finished trial
    progress = [line for line in captured.err.splitlines() if line.startswith("sweep: ")]
    assert len(progress) == 2 and progress[-1].startswith("sweep: 2/2 trials")
    assert "best so far" in progress[-1] and "ETA" in progress[-1]
    assert [line.get("trial") for line in lines[:2]] == [0, 1]
    summary = lines[-1]
    assert summary["trials"] == 2 and summary["failures"] == 0
    assert {"csv", "png", "toml"} <= set(summary)
    best = tomllib.loads((sweep_dir / "best.toml").read_text())
    assert best["policy"]["hidden_size"] == 16  # the overrides reach every trial
    assert best["ppo"]["learning_rate"] == pytest.approx(
        summary["best_params"]["ppo.learning_rate"]
    )
    assert (sweep_dir / "trials" / "trial-0001" / "metrics.jsonl").exists()
    # resume: one more trial
    assert main([*argv, "--max-runs", "3", "--policy.hidden-size", "16", "--no-plot"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("trial") for line in lines[:-1]] == [2]
    assert lines[-1]["trials"] == 3
    # the best config is a working preset
    from fugu.train.experiment import ExperimentConfig

    config = ExperimentConfig.from_preset("cartpole-v1", preset=sweep_dir / "best.toml")
    assert config.policy.hidden_size == 16


def test_sweep_errors(tmp_path, capsys):
    # the budget must be one of the searched parameters
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[sweep]\nbudget = "train.total_timesteps"\n[sweep.parameters]\n'
        '"ppo.nope" = { distribution = "log", min = 1e-4, max = 1e-2 }\n'
    )
    code = main(
        [
            "sweep",
            "cartpole-v1",
            "--preset",
            str(bad),
            "--max-runs",
            "1",
            "--sweep-dir",
            str(tmp_path / "s"),
            "--no-plot",
        ]
    )
    assert code == 2
    assert "budget" in capsys.readouterr().err


def test_sweep_help_explains_itself(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    for word in ("--max-runs", "--method", "[sweep]", "resume", "best.toml", "front.png"):
        assert word in out


def test_params_to_overrides_rejects_unknown_keys():
    from fugu.core.errors import APIUsageError
    from fugu.hpo.train_trial import make_train_trial, params_to_overrides

    with pytest.raises(APIUsageError, match="not a config key"):
        params_to_overrides({"nope.x": 1})
    from fugu.train.experiment import ExperimentConfig

    base = ExperimentConfig.from_preset("cartpole-v1")
    with pytest.raises(APIUsageError, match="cost"):
        make_train_trial(base, "x", cost="joules")
    with pytest.raises(APIUsageError, match="num_reports"):
        make_train_trial(base, "x", num_reports=0)


def test_preset_values_of_the_searched_keys():
    from fugu.cli.sweep import _preset_values

    config = {"ppo": {"gamma": 0.99, "kind": "x"}, "train": {"total_timesteps": 1000}}
    assert _preset_values(config, ["ppo.gamma", "train.total_timesteps"]) == {
        "ppo.gamma": 0.99,
        "train.total_timesteps": 1000,
    }
    assert _preset_values(config, ["ppo.kind"]) is None
    assert _preset_values(config, ["ppo.missing"]) is None


A2C_PRESET = """
[env]
num_envs = 8
[train]
total_timesteps = 512
num_steps = 4
[logging]
tensorboard = false
[sweep]
budget = "train.total_timesteps"
[sweep.parameters]
"a2c.learning_rate" = { distribution = "log", min = 1e-3, max = 3e-2 }
"train.total_timesteps" = { distribution = "log", min = 256, max = 512 }
"""


def test_sweep_trains_any_registered_algorithm(tmp_path, capsys):
    from tests.algos.test_writing_an_algorithm import load_example

    from fugu.algos import register_algorithm, unregister_algorithm

    register_algorithm("a2c", load_example().A2C, replace=True)
    preset = tmp_path / "a2c.toml"
    preset.write_text(A2C_PRESET)
    try:
        argv = ["sweep", "probe-observation-v1", "--algo", "a2c", "--preset", str(preset),
                "--sweep-dir", str(tmp_path / "sweep"), "--max-runs", "2", "--no-plot"]  # fmt: skip
        assert main(argv) == 0
    finally:
        unregister_algorithm("a2c")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["trials"] == 2 and lines[-1]["failures"] == 0
    configs = sorted((tmp_path / "sweep" / "trials").glob("*/config.json"))
    assert configs
    for path in configs:
        config = json.loads(path.read_text())
        assert config["train"]["algo"] == "a2c" and "a2c" in config
