"""Every user mistake of the first hour is one message and exit code 2, and leaves no run
folder behind."""

from __future__ import annotations

import json

import pytest
import torch

from fugu.cli.main import main

TINY = [
    *["--env.num-envs", "4", "--train.num-steps", "32", "--train.total-timesteps", "256"],
    *["--ppo.update-epochs", "1", "--checkpoint.interval", "1", "--quiet"],
]


def _code(argv):
    """The exit status, whether ``main`` returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def _train(tmp_path, *extra):
    return main(["train", "cartpole-v1", *TINY, "--root", str(tmp_path / "runs"), *extra])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "cartpol-v1"], "unknown env id 'cartpol-v1'; did you mean 'cartpole-v1'"),
        (["train", "cartpole-v1", "--train.device", "tpu9"], "unknown torch device 'tpu9'"),
        (["train", "cartpole-v1", "--ppo.lr", "1"], "did you mean --ppo.learning-rate (or --lr)"),
        (
            ["train", "cartpole-v1", "--train.learning-rate", "1"],
            "did you mean --ppo.learning-rate",
        ),
        (["train", "cartpole-v1", "--resume", "lastest"], "did you mean --resume latest"),
        (["train", "cartpole-v1", "--epochs", "0"], "--epochs must be >= 1"),
        (["train", "cartpole-v1", "--epochs", "-2"], "--epochs must be >= 1"),
        (
            ["train", "cartpole-v1", "--env.kwargs", '{"nonexistent_kw": 1}'],
            "rejected env.kwargs {'nonexistent_kw': 1}",
        ),
        (["train", "cartpole-v1", "--run-dir", "/proc/x"], "cannot write in /proc"),
        (["train", "cartpole-v1", "--summary-json", "/proc/x/s.json"], "--summary-json"),
        (["train", "cartpole-v1", "--ppo.gamma", "1.5"], "gamma and gae_lambda must be in [0, 1]"),
        (["train", "cartpole-v1", "--ppo.learning-rate", "-1"], "needs learning_rate > 0"),
    ],
)
def test_train_mistakes_are_one_message_exit_2_and_no_run_folder(tmp_path, capsys, argv, message):
    argv = [*argv, "--quiet", "--root", str(tmp_path / "runs")]
    assert _code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_train_on_cuda_without_cuda_says_so(tmp_path, capsys):
    assert _train(tmp_path, "--device", "cuda") == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "cpu" in err
    assert not (tmp_path / "runs").exists()


def test_unknown_flags_get_close_matches_from_every_section(tmp_path, capsys):
    assert _code(["train", "cartpole-v1", *TINY, "--lerning-rate", "1e-3"]) == 2
    assert "did you mean --learning-rate or --ppo.learning-rate" in capsys.readouterr().err


def test_short_aliases_set_the_right_keys(tmp_path, capsys):
    code = main(
        [
            *["train", "cartpole-v1", "--quiet", "--run-dir", str(tmp_path / "r")],
            *["--lr", "1e-3", "--total-timesteps", "256", "--num-envs", "4", "--device", "cpu"],
            *["--num-steps", "32", "--gamma", "0.9"],
        ]
    )
    assert code == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["ppo"]["learning_rate"] == 1e-3 and config["ppo"]["gamma"] == 0.9
    assert config["train"]["total_timesteps"] == 256 and config["env"]["num_envs"] == 4


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cartpole") / "run"
    assert main(["train", "cartpole-v1", *TINY, "--run-dir", str(run)]) == 0
    return run


def test_eval_reads_the_env_from_the_checkpoint(cartpole_run, capsys):
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(cartpole_run), "--episodes", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["env"] == "cartpole-v1" and report["episodes"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "breakout-v1"], "was trained on 'cartpole-v1', whose observation space"),
        (["eval", "pendulum-v1"], "was trained on 'cartpole-v1', whose observation space"),
        (["eval", "--device", "tpu9"], "unknown torch device 'tpu9'"),
        (["eval", "--render", "gif", "--output", "/proc/none/x.gif"], "--output"),
        (["eval", "--episodes", "0"], "--episodes"),
        (["eval", "cartpol-v1"], "did you mean 'cartpole-v1'"),
    ],
)
def test_eval_mistakes(cartpole_run, capsys, argv, message):
    capsys.readouterr()
    assert main([*argv, "--checkpoint", str(cartpole_run)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_explains_missing_manifests(tmp_path, cartpole_run, capsys):
    import shutil

    step = sorted((cartpole_run / "checkpoints").glob("step-*"))[-1]
    copy = tmp_path / "copy"
    shutil.copytree(step, copy)
    (copy / "manifest.json").unlink()
    assert main(["eval", "--checkpoint", str(copy)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_the_summary_tells_first_solved_from_final_and_evaluates_best(tmp_path, capsys):
    code = main(
        [
            *["train", "cartpole-v1", *TINY, "--run-dir", str(tmp_path / "r")],
            *["--env.solve-threshold", "5", "--train.episode-window", "3"],
            *["--train.stop-on-solve", "false"],
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "first solved: step 128" in out
    assert "final:       mean return" in out
    best = next(line for line in out.splitlines() if line.startswith("best ckpt:"))
    assert "checkpoints/best/step-" in best
    assert f"evaluate:    fugu eval --checkpoint {best.split()[-1]}" in out


def test_help_for_an_env_shows_its_preset_values(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "cartpole-v1", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--train.total-timesteps (int, cartpole-v1's preset 1500000)" in out
    assert "--ppo.learning-rate (float, cartpole-v1's preset 0.02)" in out


def test_print_config_is_a_dry_run(tmp_path, capsys):
    argv = ["train", "cartpole-v1", "--lr", "0.01", "--print-config", "--root", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert 'id = "cartpole-v1"' in out and "learning_rate = 0.01" in out
    assert not any(tmp_path.iterdir())


def test_resume_without_flags_uses_the_checkpoint_config(tmp_path, capsys):
    preset = tmp_path / "mine.toml"
    preset.write_text("[env]\nnum_envs = 4\n[train]\nnum_steps = 32\ntotal_timesteps = 384\n")
    run = str(tmp_path / "run")
    first = ["train", "cartpole-v1", "--preset", str(preset), "--run-dir", run, "--quiet"]
    assert main([*first, "--epochs", "1"]) == 0
    # the same run dir without --preset: continues that run with its own config, and the
    # dashboard counts toward that config's total, not the cartpole-v1 preset's 1.5M
    capsys.readouterr()
    assert main(["train", "cartpole-v1", "--run-dir", run]) == 0
    captured = capsys.readouterr()
    assert "resumed:" in captured.out
    assert "384/384" in captured.err and "1500000" not in captured.err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["timesteps"] == 384 and summary["resumed_from"]
    # an override that contradicts the checkpoint is still refused, with the reason
    assert main(["train", "cartpole-v1", "--run-dir", run, "--num-envs", "8", "--quiet"]) == 2
    assert "the config differs from the checkpoint's" in capsys.readouterr().err


def test_fugu_runs_lists_status_and_returns(tmp_path, cartpole_run, capsys):
    capsys.readouterr()
    assert main(["runs", str(cartpole_run.parent), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["run"] == "run" and row["env"] == "cartpole-v1" and row["algo"] == "ppo"
    assert row["status"] == "done" and row["steps"] == 256
    assert row["best_checkpoint"].endswith("step-000000000256")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / "config.json").write_text(json.dumps({"env": {"id": "snake-v1"}}))
    (crashed / "metrics.jsonl").write_text('{"step": 64}\n')
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "crashed" in out and "running or crashed" in out and "64" in out
    assert main(["runs", str(tmp_path / "none")]) == 2
    assert "no folder" in capsys.readouterr().err
