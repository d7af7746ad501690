"""Metric sinks: JSONL content, TensorBoard event files, W&B offline runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.loggers import JsonlLogger, Logger, MultiLogger, NullLogger, read_jsonl
from fugu.loggers.media import check_frames, check_image, encode_png, write_video
from fugu.loggers.tensorboard import TensorBoardLogger
from fugu.loggers.wandb import WandbLogger

FRAMES = (np.arange(4 * 6 * 8 * 3) % 251).astype(np.uint8).reshape(4, 6, 8, 3)


def test_jsonl_rows_and_append(tmp_path):
    path = tmp_path / "sub" / "metrics.jsonl"
    logger = JsonlLogger(path)
    logger.log_metrics({"env/episode_return": 10.0, "loss/value": np.float32(0.25)}, step=64)
    logger.log_histogram("weights", np.ones(3), step=64)  # ignored
    logger.log_metrics({"perf/sps": float("inf")}, step=128)
    logger.close()
    logger.close()
    logger.log_metrics({"x": 1.0}, step=1)  # closed: dropped
    with JsonlLogger(path) as again:  # a resumed run appends
        again.log_metrics({"env/episode_return": 11.0}, step=192)
    path.write_text(path.read_text() + '{"step": 2')  # a torn last line
    rows = read_jsonl(path)
    assert rows == [
        {"step": 64, "env/episode_return": 10.0, "loss/value": 0.25},
        {"step": 128, "perf/sps": None},
        {"step": 192, "env/episode_return": 11.0},
    ]
    assert all(json.loads(line) for line in path.read_text().splitlines()[:3])


def test_tensorboard_events_are_readable(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path / "tb")
    assert isinstance(logger, Logger)
    logger.log_config({"ppo": {"learning_rate": 3e-4}})
    logger.log_metrics({"loss/policy": 0.5, "perf/sps": float("nan")}, step=10)
    logger.log_metrics({"loss/policy": 0.25}, step=20)
    logger.log_histogram("weights/fc", np.linspace(-1, 1, 101), step=20)
    logger.log_histogram("actions", np.full(5, 2.0), step=20)
    logger.log_histogram("empty", np.array([np.nan]), step=20)
    logger.log_image("render", FRAMES[0], step=20)
    logger.log_video("episode", FRAMES, step=20, fps=10)
    logger.close()
    logger.close()
    logger.log_metrics({"loss/policy": 9.0}, step=30)  # closed: dropped

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert tags["scalars"] == ["loss/policy"]
    assert [(e.step, e.value) for e in events.Scalars("loss/policy")] == [(10, 0.5), (20, 0.25)]
    histogram = events.Histograms("weights/fc")[0].histogram_value
    assert histogram.num == 101 and histogram.min == -1.0 and histogram.max == 1.0
    assert sum(histogram.bucket_limit) != 0 and sum(histogram.bucket) == 101
    assert "empty" not in tags["histograms"]
    image = events.Images("render")[0]
    assert (image.width, image.height) == (8, 6)
    assert image.encoded_image_string == encode_png(FRAMES[0])
    assert events.Images("episode")[0].encoded_image_string.startswith(b"GIF89a")
    assert "config" in tags["tensors"]


def test_png_decodes_to_the_same_pixels():
    import imageio.v3 as iio

    assert np.array_equal(iio.imread(encode_png(FRAMES[1]), extension=".png"), FRAMES[1])


def test_media_checks_and_video_files(tmp_path):
    with pytest.raises(ValueError, match="RGB uint8"):
        check_image(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="T >= 1"):
        check_frames(np.zeros((0, 2, 2, 3), dtype=np.uint8))
    gif = write_video(tmp_path / "a.gif", FRAMES, fps=5)
    assert gif.read_bytes().startswith(b"GIF89a")
    mp4 = write_video(tmp_path / "b.mp4", FRAMES[:, :5, :7], fps=5)  # odd sizes are padded
    assert mp4.stat().st_size > 0
    with pytest.raises(APIUsageError, match=r".gif or .mp4"):
        write_video(tmp_path / "c.avi", FRAMES)


def test_wandb_offline_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger("fugu-tests", mode="offline", name="t", group="sweep-1", dir=tmp_path)
    assert logger.run.group == "sweep-1"
    logger.log_config({"ppo": {"learning_rate": 0.001}})
    logger.log_metrics({"loss/policy": 0.5, "perf/sps": float("nan")}, step=1)
    logger.log_histogram("weights", np.arange(10.0), step=2)
    logger.log_image("render", FRAMES[0], step=3)
    logger.log_video("episode", FRAMES, step=4)
    logger.close()
    logger.close()
    logger.log_metrics({"x": 1.0}, step=5)  # closed: dropped
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))
    assert list((runs[0] / "files" / "media" / "videos").glob("*.gif"))


def test_wandb_bad_mode():
    with pytest.raises(APIUsageError, match="wandb mode"):
        WandbLogger("p", mode="sometimes")


def test_multi_logger_fans_out(tmp_path):
    class Recorder(NullLogger):
        def __init__(self):
            self.calls = []

        def __getattribute__(self, name):
            attr = object.__getattribute__(self, name)
            if name.startswith("log_") or name in ("flush", "close"):
                calls = object.__getattribute__(self, "calls")
                return lambda *a, **k: calls.append(name)
            return attr

    first, second = Recorder(), Recorder()
    multi = MultiLogger([first, second])
    multi.log_config({})
    multi.log_metrics({"a": 1.0}, 0)
    multi.log_histogram("h", np.ones(2), 0)
    multi.log_image("i", FRAMES[0], 0)
    multi.log_video("v", FRAMES, 0)
    multi.flush()
    multi.close()
    expected = ["log_config", "log_metrics", "log_histogram", "log_image", "log_video"]
    assert first.calls == [*expected, "flush", "close"] == second.calls
