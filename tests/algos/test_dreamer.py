"""Dreamer-lite through the trainer: it learns a probe, seeded runs and resumes are identical,
and it trains, saves, loads and evaluates through ``fugu.train`` and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

import fugu
from fugu.algos.dreamer import Dreamer, DreamerConfig
from fugu.algos.registry import get_algorithm
from fugu.cli.main import main
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

TINY = {"deter": 32, "groups": 4, "classes": 4, "hidden": 32, "embed": 32}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trainer(env_id, config, num_envs, num_steps, total):
    torch.manual_seed(0)
    envs = make_train_envs(env_id, num_envs, seed=0, double_buffer=False)
    env = envs[0]
    algo = Dreamer.build(config, env.single_observation_space, env.single_action_space,
                         PolicyConfig())  # fmt: skip
    return Trainer(envs, algo, TrainConfig(num_steps=num_steps, total_timesteps=total))


def test_registered_and_checks_its_spaces() -> None:
    assert get_algorithm("dreamer") is Dreamer and Dreamer.collection == "replay"
    with pytest.raises(APIUsageError, match="does not support discrete"):
        Dreamer.build(DreamerConfig(**TINY), spaces.Box(-1, 1, (3,)), spaces.Discrete(2),
                      PolicyConfig())  # fmt: skip
    with pytest.raises(APIUsageError, match="train_ratio > 0"):
        DreamerConfig(train_ratio=0)


def test_learns_the_continuous_probe_and_its_reward_model() -> None:
    # obs = a target in [-1, 1], reward 1 - (action - target)^2, one step per episode:
    # random actions earn 1/3 on average, the optimum is 1
    # (windows of two steps: an episode's observation and its final one)
    config = DreamerConfig(batch_size=32, seq_len=2, imag_horizon=2, learning_starts=160,
                           train_ratio=16.0, model_lr=3e-3, actor_lr=1e-3, critic_lr=1e-3,
                           **TINY)  # fmt: skip
    trainer = _trainer("probe-continuous-v1", config, 8, 1, 1600)
    reward_losses = []
    while not trainer.done:
        metrics = trainer.train_epoch()
        if "loss/reward" in metrics:
            reward_losses.append(metrics["loss/reward"])
    trainer.close()
    algo = trainer.algo
    assert algo.start_added is not None  # paced by train_ratio from the first update on:
    assert algo.num_updates == 1 + (1600 - algo.start_added) * 16 // 64
    assert np.mean(reward_losses[-10:]) < 0.5 * np.mean(reward_losses[:5])
    assert trainer.episodes.mean_return(100) > 0.7
    targets = torch.linspace(-0.8, 0.8, 5).unsqueeze(-1)
    greedy = algo.act(targets, algo.initial_state(5), {}, deterministic=True).actions
    assert np.corrcoef(greedy[:, 0].numpy(), targets[:, 0].numpy())[0, 1] > 0.9


def test_seeded_runs_and_resume_are_identical() -> None:
    config = DreamerConfig(batch_size=4, seq_len=6, imag_horizon=3, learning_starts=24,
                           train_ratio=8.0, **TINY)  # fmt: skip

    def run(epochs, state=None):
        trainer = _trainer("cartpole-swingup-v1", config, 2, 6, 10_000)
        if state is not None:
            trainer.load_state_dict(state)
        for _ in range(epochs):
            trainer.train_epoch()
        trainer.close()
        return trainer

    straight, again = run(6), run(6)
    half = run(3)
    resumed = run(3, half.state_dict())
    assert straight.algo.num_updates > 3
    for other in (again, resumed):
        for name, module in straight.algo.modules().items():
            theirs = other.algo.modules()[name].state_dict()
            assert all(torch.equal(v, theirs[k]) for k, v in module.state_dict().items()), name


def test_trains_saves_loads_and_evaluates(tmp_path) -> None:
    options = {f"dreamer.{k}": v for k, v in TINY.items()}
    agent = fugu.train(
        "pendulum-v1", algo="dreamer", run_dir=tmp_path / "run", total_timesteps=96,
        num_envs=2, num_steps=8, logging__tensorboard=False, **{
            "dreamer.learning_starts": 32, "dreamer.batch_size": 2, "dreamer.seq_len": 8,
            "dreamer.imag_horizon": 2, "dreamer.train_ratio": 1.0, **options,
        },
    )  # fmt: skip
    assert agent.config.algo == "dreamer" and agent.summary.timesteps == 96
    loaded = fugu.load(agent.save(tmp_path / "saved"))
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    assert len(loaded.evaluate(episodes=2, num_envs=2).returns) == 2
    assert main(["eval", "pendulum-v1", "--checkpoint", str(tmp_path / "run"),
                 "--episodes", "2"]) == 0  # fmt: skip
