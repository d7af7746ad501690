"""`fugu train` and `fugu eval`: tiny runs, summary JSON, overrides, resume, rendering."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fugu.cli.main import main
from fugu.cli.train import split_overrides

TINY = [
    "--env.num-envs",
    "4",
    "--train.num-steps",
    "32",
    "--train.total-timesteps",
    "512",
    "--ppo.update-epochs",
    "1",
    "--checkpoint.interval",
    "1",
    "--quiet",
]
SUMMARY_KEYS = {
    "env",
    "algo",
    "timesteps",
    "wall_s",
    "sps",
    "final_return",
    "solved",
    "time_to_solve_s",
    "steps_to_solve",
    "checkpoint",
}


def test_train_quiet_writes_summary_json_and_eval_renders_a_gif(tmp_path, capsys):
    summary_path = tmp_path / "summary.json"
    code = main(
        [
            *["train", "cartpole-v1", *TINY, "--run-dir", str(tmp_path / "run"), "--seed", "3"],
            *["--summary-json", str(summary_path)],
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "run dir:" in out and "checkpoint:" in out and "tensorboard --logdir" in out
    summary = json.loads(summary_path.read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["env"] == "cartpole-v1" and summary["algo"] == "ppo" and summary["seed"] == 3
    assert summary["timesteps"] == 512
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["seed"] == 3 and config["ppo"]["seed"] == 3
    assert config["env"]["num_envs"] == 4

    gif = tmp_path / "episode.gif"
    code = main(
        [
            *["eval", "cartpole-v1", "--checkpoint", str(tmp_path / "run"), "--episodes", "2"],
            *["--render", "gif", "--output", str(gif), "--max-frames", "8", "--json"],
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 2 and len(report["returns"]) == 2
    assert report["checkpoint"] == summary["checkpoint"]
    assert gif.read_bytes().startswith(b"GIF89a")
    code = main(["eval", "cartpole-v1", "--checkpoint", summary["checkpoint"], "--episodes", "1"])
    assert code == 0 and "mean return" in capsys.readouterr().out


def test_eval_errors(tmp_path, capsys):
    assert main(["eval", "cartpole-v1", "--checkpoint", str(tmp_path)]) == 2
    assert "no valid checkpoint" in capsys.readouterr().err


def test_unknown_override_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "cartpole-v1", "--ppo.learnig-rate", "1", "--run-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "did you mean --ppo.learning-rate" in err and "--help' lists every option" in err


def test_help_lists_overrides(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--ppo.learning-rate" in out and "--train.total-timesteps" in out
    assert "--resume" in out and "--summary-json" in out


def test_split_overrides():
    overrides, rest = split_overrides(
        ["cartpole-v1", "--a.b=1", "--ppo.ent-coef", "-0.5", "--logging.wandb", "--quiet"]
    )
    assert overrides == ["--a.b", "1", "--ppo.ent-coef", "-0.5", "--logging.wandb", "true"]
    assert rest == ["cartpole-v1", "--quiet"]


def test_dashboard_run(tmp_path, capsys):
    args = [a for a in TINY if a != "--quiet"]
    assert main(["train", "cartpole-v1", *args, "--run-name", "dash", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"run dir:     {tmp_path / 'dash'}" in out


def _fugu(*args, cwd):
    env = dict(os.environ, WANDB_MODE="offline")
    return subprocess.run(
        [sys.executable, "-m", "fugu.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_split_run_with_resume_in_a_new_process_equals_one_run_bitwise(tmp_path, capsys):
    assert main(["train", "cartpole-v1", *TINY, "--run-dir", str(tmp_path / "full")]) == 0
    split = str(tmp_path / "split")
    assert main(["train", "cartpole-v1", *TINY, "--run-dir", split, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "stopped:" in out and "--resume latest" in out
    second = _fugu(
        "train", "cartpole-v1", *TINY, "--run-dir", split, "--resume", "latest", cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr
    assert "resumed:" in second.stdout and "done:" in second.stdout
    name = "step-000000000512/weights.safetensors"
    a = (tmp_path / "full" / "checkpoints" / name).read_bytes()
    b = (tmp_path / "split" / "checkpoints" / name).read_bytes()
    assert a == b


def test_sigint_stops_after_the_epoch_with_a_checkpoint(tmp_path):
    import signal
    import time

    process = subprocess.Popen(
        [
            *[sys.executable, "-m", "fugu.cli.main", "train", "cartpole-v1", *TINY],
            *["--train.total-timesteps", "10000000", "--run-dir", "run"],
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted:" in out and "--resume latest" in out
    assert "stopping after this epoch" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] and summary["checkpoint"]
    assert (tmp_path / "run" / "checkpoints").is_dir()
