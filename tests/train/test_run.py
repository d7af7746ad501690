"""train(config): run dirs, logging to every sink, callbacks, solve detection, checkpoints,
stop requests and resume (exact, from the latest valid checkpoint)."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import torch

from fugu.checkpoint import list_checkpoints, load_checkpoint, load_weights
from fugu.core.errors import APIUsageError
from fugu.loggers import read_jsonl
from fugu.train.experiment import ExperimentConfig
from fugu.train.run import resolve_run_dir, train

TINY = {
    "env.num_envs": 4,
    "train.num_steps": 32,
    "train.total_timesteps": 512,  # 4 epochs of 128 steps
    "ppo.update_epochs": 1,
    "ppo.num_minibatches": 2,
    "checkpoint.interval": 2,
    "checkpoint.keep_last": 2,
}


def tiny(**overrides):
    values = dict(TINY)
    values.update({key.replace("__", "."): value for key, value in overrides.items()})
    return ExperimentConfig.from_preset("cartpole-v1", values)


def test_run_writes_everything(tmp_path):
    seen = []

    def callback(context):
        seen.append((context.epoch, context.global_step, context.metrics["train/epoch"]))
        assert context.run_dir == tmp_path / "run"
        return {"custom/value": context.epoch * 2}

    progress = []
    config = tiny(logging__histogram_interval=2, logging__video_interval=4, logging__video_length=5)
    summary = train(
        config, callbacks=[callback], run_dir=tmp_path / "run", on_progress=progress.append
    )
    run_dir = tmp_path / "run"
    assert summary.timesteps == 512 and summary.epochs == 4 and not summary.interrupted
    assert seen == [(1, 128, 1.0), (2, 256, 2.0), (3, 384, 3.0), (4, 512, 4.0)]
    assert [p.global_step for p in progress] == [128, 256, 384, 512]
    assert progress[-1].fraction == 1.0
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [row["step"] for row in rows] == [128, 256, 384, 512]
    assert rows[-1]["custom/value"] == 8.0
    for key in ("loss/policy", "perf/sps", "train/learning_rate", "env/mean_return_100"):
        assert key in rows[-1]
    assert "eval/episode_return" in rows[-1]
    assert ExperimentConfig.load(run_dir) == config
    assert (run_dir / "config.toml").is_file()
    assert json.loads((run_dir / "summary.json").read_text()) == summary.to_dict()
    # checkpoints every 2 epochs, the final one, keep_last=2
    assert [p.name for p in list_checkpoints(run_dir)] == [
        "step-000000000256",
        "step-000000000512",
    ]
    assert summary.checkpoint == str(run_dir / "checkpoints" / "step-000000000512")
    ckpt = load_checkpoint(summary.checkpoint)
    assert ckpt.counters == {"global_step": 512, "epoch": 4}
    assert ckpt.config == config.to_dict()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert "loss/policy" in tags["scalars"] and "custom/value" in tags["scalars"]
    assert any(tag.startswith("weights/") for tag in tags["histograms"])
    assert any(tag.startswith("gradients/") for tag in tags["histograms"])
    assert "actions" in tags["histograms"]
    assert "eval/video" in tags["images"] and "eval/frame" in tags["images"]


def test_solve_detection(tmp_path):
    # the criterion needs a full window (here 3 episodes: train.episode_window)
    config = tiny(env__solve_threshold=5.0, train__episode_window=3, train__stop_on_solve=False)
    summary = train(config, run_dir=tmp_path / "r", quiet=True)
    assert summary.solved and summary.solved_at_end and not summary.stopped_on_solve
    assert summary.steps_to_solve == 128
    assert 0 <= summary.time_to_solve_s <= summary.wall_s + 1
    unsolved = train(tiny(env__solve_threshold=1e9), run_dir=tmp_path / "u", quiet=True)
    assert not unsolved.solved and unsolved.steps_to_solve is None
    assert not unsolved.solved_at_end


def test_stop_on_solve_ends_the_run_at_the_solving_epoch(tmp_path):
    config = tiny(env__solve_threshold=5.0, train__episode_window=3, train__stop_on_solve=True)
    summary = train(config, run_dir=tmp_path / "r", quiet=True)
    assert summary.stopped_on_solve and summary.timesteps == 128 == summary.steps_to_solve
    assert summary.checkpoint.endswith("step-000000000128")
    # a run stopped on solve is not "unfinished": resuming it does nothing more
    assert summary.epochs == 1


@pytest.mark.parametrize("deterministic", [True, False])
def test_the_solve_check_samples_when_told_to(tmp_path, monkeypatch, deterministic):
    import fugu.train.evaluate as evaluate

    real, calls = evaluate.evaluate_policy, []

    def spy(env, actor, episodes, **kwargs):
        calls.append(kwargs["deterministic"])
        return real(env, actor, episodes, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_policy", spy)
    config = tiny(
        env__solve_threshold=5.0,
        train__episode_window=3,
        train__stop_on_solve=True,
        train__solve_check_deterministic=deterministic,
    )
    summary = train(config, run_dir=tmp_path / "r", quiet=True)
    assert calls == [deterministic]  # the one check that confirmed the solve
    assert summary.stopped_on_solve and summary.solve_check_deterministic is deterministic
    assert summary.solve_check_return >= 5.0


def test_best_checkpoint_is_always_kept_and_loadable(tmp_path):
    # keep_last=1 prunes every older step checkpoint; best/ survives pruning
    config = tiny(train__episode_window=3, checkpoint__interval=1, checkpoint__keep_last=1)
    summary = train(config, run_dir=tmp_path / "r", quiet=True)
    best = tmp_path / "r" / "checkpoints" / "best"
    assert summary.best_checkpoint is not None
    assert list_checkpoints(best) == [type(best)(summary.best_checkpoint)]
    rows = read_jsonl(tmp_path / "r" / "metrics.jsonl")
    best_row = max(rows, key=lambda row: row["env/mean_return_100"])
    assert summary.best_return == best_row["env/mean_return_100"]
    assert summary.best_step == best_row["step"]
    loaded = load_checkpoint(summary.best_checkpoint)
    assert loaded.manifest["metadata"]["kind"] == "best"
    assert loaded.manifest["metadata"]["spaces"]["action"] == {"type": "Discrete", "n": 2}
    assert loaded.counters["global_step"] == summary.best_step
    assert set(loaded.weights) == set(load_checkpoint(summary.checkpoint).weights)
    # a best checkpoint holds no trainer state: resuming from it says so
    with pytest.raises(APIUsageError, match="weights only"):
        train(config.with_overrides({"checkpoint.resume": summary.best_checkpoint}), quiet=True)


def test_best_checkpoint_without_a_full_window_is_the_final_policy(tmp_path):
    summary = train(tiny(), run_dir=tmp_path / "r", quiet=True)  # < 100 episodes
    assert summary.best_return is None and summary.best_step == 512
    assert summary.best_checkpoint.endswith("best/step-000000000512")


@pytest.mark.parametrize("double_buffer", [False, True])
def test_stop_event_checkpoints_and_resume_is_exact(tmp_path, double_buffer):
    config = tiny(train__double_buffer=double_buffer)
    full = train(config, run_dir=tmp_path / "full", quiet=True)

    stop = threading.Event()

    def stop_after_first(context):
        stop.set()

    first = train(config, callbacks=[stop_after_first], run_dir=tmp_path / "split", stop=stop)
    assert first.interrupted and first.timesteps == 128
    assert first.checkpoint.endswith("step-000000000128")
    second = train(config, run_dir=tmp_path / "split", quiet=True)  # resume "auto"
    assert second.resumed_from == first.checkpoint
    assert second.timesteps == 512 and not second.interrupted
    a, b = load_weights(full.checkpoint), load_weights(second.checkpoint)
    assert all(torch.equal(a[name], b[name]) for name in a)
    rows = read_jsonl(tmp_path / "split" / "metrics.jsonl")
    assert [row["step"] for row in rows] == [128, 256, 384, 512]
    # a finished run run again does nothing but report
    again = train(config, run_dir=tmp_path / "split", quiet=True)
    assert again.timesteps == 512 and again.epochs == 4


def test_max_epochs_then_resume_latest_finds_the_run(tmp_path):
    root = tmp_path / "runs"
    first = train(tiny(), root=root, max_epochs=1, quiet=True)
    assert first.timesteps == 128
    assert first.run_dir.startswith(str(root / "cartpole-v1-ppo-0-"))
    resumed = train(tiny(checkpoint__resume="latest"), root=root, quiet=True)
    assert resumed.run_dir == first.run_dir
    assert resumed.resumed_from == first.checkpoint and resumed.timesteps == 512
    with pytest.raises(APIUsageError, match="no valid checkpoint"):
        train(tiny(checkpoint__resume="latest", train__seed=7), root=root, quiet=True)


def test_resume_from_a_path_and_never(tmp_path):
    first = train(tiny(), run_dir=tmp_path / "a", max_epochs=2, quiet=True)
    resumed = train(tiny(checkpoint__resume=first.checkpoint), quiet=True)
    assert resumed.run_dir == str(tmp_path / "a") and resumed.timesteps == 512
    fresh = train(tiny(checkpoint__resume="never"), run_dir=tmp_path / "a", max_epochs=1)
    assert fresh.resumed_from is None and fresh.timesteps == 128
    # the old run's checkpoints and metrics were set aside, not mixed with the new run's
    assert [p.name for p in list_checkpoints(tmp_path / "a")] == ["step-000000000128"]
    assert [row["step"] for row in read_jsonl(tmp_path / "a" / "metrics.jsonl")] == [128]
    assert len(list((tmp_path / "a").glob("checkpoints-replaced-*"))) == 1
    assert len(list((tmp_path / "a").glob("metrics-replaced-*.jsonl"))) == 1
    with pytest.raises(APIUsageError, match="no valid checkpoint there"):
        train(tiny(checkpoint__resume=str(tmp_path / "nowhere")), quiet=True)


def test_corrupt_newest_checkpoint_resumes_the_previous(tmp_path, caplog):
    first = train(tiny(), run_dir=tmp_path / "r", max_epochs=4, quiet=True)
    checkpoints = list_checkpoints(tmp_path / "r")
    assert len(checkpoints) == 2
    (checkpoints[-1] / "manifest.json").write_text("{truncated")
    (tmp_path / "r" / "checkpoints" / ".tmp-step-000000000640-x").mkdir()  # killed mid-write
    with caplog.at_level(logging.WARNING):
        resumed = train(
            tiny(train__total_timesteps=512), run_dir=tmp_path / "r", quiet=True, max_epochs=0
        )
    assert resumed.resumed_from == str(checkpoints[0])
    [skipped] = resumed.skipped_checkpoints
    assert skipped.startswith(f"{checkpoints[-1]}: manifest.json is not valid JSON")
    assert resumed.checkpoint == str(checkpoints[0])
    # rows logged after the resumed checkpoint were dropped (they would be redone)
    assert [row["step"] for row in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [128, 256]
    assert "skipping checkpoint" in caplog.text and "not valid JSON" in caplog.text
    assert first.timesteps == 512


def test_resume_with_a_different_config_is_refused(tmp_path):
    train(tiny(), run_dir=tmp_path / "r", max_epochs=1, quiet=True)
    with pytest.raises(APIUsageError, match=r"ppo.learning_rate"):
        train(tiny(ppo__learning_rate=0.5), run_dir=tmp_path / "r", quiet=True)
    # logging and checkpoint settings may change between sessions
    summary = train(tiny(logging__tensorboard=False), run_dir=tmp_path / "r", quiet=True)
    assert summary.timesteps == 512


def test_run_dir_names(tmp_path):
    config = tiny(train__seed=3)
    assert resolve_run_dir(config, run_dir=tmp_path) == tmp_path
    assert resolve_run_dir(config, run_name="x", root=tmp_path) == tmp_path / "x"
    first = resolve_run_dir(config, root=tmp_path)
    assert first.name.startswith("cartpole-v1-ppo-3-")
    first.mkdir()
    second = resolve_run_dir(config, root=tmp_path)
    assert second != first and second.name.startswith("cartpole-v1-ppo-3-")


def test_wandb_sink(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = tiny(
        logging__wandb=True,
        logging__wandb_group="sweep-7",
        logging__tensorboard=False,
        train__total_timesteps=128,
    )
    train(config, run_dir=tmp_path / "r", quiet=True)
    assert list((tmp_path / "r" / "wandb").glob("offline-run-*/*.wandb"))


def score_config(**overrides):
    values = {
        "train.algo": "ppo",
        "env.num_envs": 4,
        "env.kwargs": {"n": 1, "info_interval": 8},
        "train.num_steps": 32,
        "train.total_timesteps": 256,
        "train.episode_window": 3,
        "train.stop_on_solve": False,
        "ppo.update_epochs": 1,
        "ppo.num_minibatches": 2,
    }
    values.update({key.replace("__", "."): value for key, value in overrides.items()})
    return ExperimentConfig.from_preset("bitflip-v1", values)


def test_solve_metric_compares_an_info_score_with_the_threshold(tmp_path):
    # one bit: every episode succeeds at its first step, while returns stay at -1 or 0
    progress = []
    summary = train(score_config(), run_dir=tmp_path / "r", quiet=True, on_progress=progress.append)
    assert summary.solve_metric == "success" and summary.final_score == 1.0
    assert summary.solved and summary.solved_at_end
    assert progress[-1].solve_score == 1.0 and progress[-1].solved_now
    rows = read_jsonl(tmp_path / "r" / "metrics.jsonl")
    assert rows[-1]["env/mean_success_100"] == 1.0
    # the same run judged by its return (at most 0 here) is not solved at 0.95
    by_return = train(
        score_config(env__solve_metric="episode_return"), run_dir=tmp_path / "b", quiet=True
    )
    assert not by_return.solved and by_return.final_score == by_return.final_return


def test_a_solve_metric_the_env_does_not_report_is_refused(tmp_path):
    with pytest.raises(APIUsageError, match="not reported by bitflip-v1"):
        train(score_config(env__solve_metric="win"), run_dir=tmp_path / "r", quiet=True)
    assert not (tmp_path / "r").exists()
    gym_config = tiny(
        **{"env.id": "CartPole-v1", "env.solve_metric": "success", "env.solve_threshold": 1.0}
    )
    with pytest.raises(APIUsageError, match="reports no 'success'"):
        train(gym_config, run_dir=tmp_path / "g", quiet=True)
