"""Novelty heatmaps reach the loggers during training, on envs with grid cells."""

from __future__ import annotations

import numpy as np

import fugu
from fugu.algos.ppo_rnd import PPORND, PPORNDConfig
from fugu.explore.config import ExploreConfig, make_reward_hooks
from fugu.loggers import NullLogger
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.diagnostics import log_novelty_heatmaps
from fugu.train.experiment import ExperimentConfig
from fugu.train.loop import Trainer
from fugu.train.run import train


class ImageRecorder(NullLogger):
    def __init__(self) -> None:
        self.images: list[tuple[str, np.ndarray, int]] = []

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.images.append((tag, image, step))


def make_trainer(method: str) -> Trainer:
    env = fugu.make("deep-sea-v1", num_envs=4, size=5, seed=0)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    algo = PPORND.build(PPORNDConfig(), obs_space, act_space, PolicyConfig())
    hooks = make_reward_hooks(ExploreConfig(method=method), algo, obs_space, act_space)
    return Trainer(env, algo, TrainConfig(num_steps=10, total_timesteps=40), reward_hooks=hooks)


def test_rnd_novelty_is_painted_over_the_grid_and_changes_as_it_learns() -> None:
    trainer = make_trainer("rnd")
    recorder = ImageRecorder()
    assert log_novelty_heatmaps(recorder, trainer, 0) == 1
    trainer.train()
    assert log_novelty_heatmaps(recorder, trainer, 40) == 1
    (tag, before, _), (_, after, step) = recorder.images
    assert tag == "explore/rnd_novelty" and step == 40
    assert before.dtype == np.uint8 and before.shape[2] == 3
    assert before.shape[:2] == (5 * 8, 5 * 8)  # 5 x 5 cells of 8 pixels
    assert not np.array_equal(before, after)  # the predictor learned the visited cells
    trainer.close()


def test_no_image_without_a_novelty_hook_or_a_grid() -> None:
    trainer = make_trainer("icm")  # curiosity depends on the action: no per-cell novelty
    assert log_novelty_heatmaps(ImageRecorder(), trainer, 0) == 0
    trainer.close()


def test_training_logs_heatmaps_at_the_interval(tmp_path, monkeypatch) -> None:
    logged: list[int] = []

    def spy(logger, trainer, step):
        logged.append(step)
        return 1

    monkeypatch.setattr("fugu.train.session.log_novelty_heatmaps", spy)
    config = ExperimentConfig.from_preset(
        "deep-sea-v1",
        {
            "env.num_envs": 4,
            "env.kwargs": {"size": 5},
            "train.num_steps": 10,
            "train.total_timesteps": 160,
            "train.stop_on_solve": False,
            "logging.heatmap_interval": 2,
            "logging.tensorboard": False,
        },
    )
    train(config, run_dir=tmp_path / "run", quiet=True)
    assert logged == [80, 160]
