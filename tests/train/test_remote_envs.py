"""A training run steps its envs on a ``fugu serve`` server through ``env.backend = "remote"``."""

from __future__ import annotations

from pathlib import Path

from fugu.train.experiment import ExperimentConfig
from fugu.train.run import train
from fugu.vector.serve import EnvServer


def test_ppo_trains_on_remote_envs(tmp_path: Path) -> None:
    server = EnvServer("cartpole-v1", num_envs=8)
    server.start()
    try:
        config = ExperimentConfig.from_preset(
            "cartpole-v1",
            ["--env.backend", "remote", "--env.address", server.address, "--env.num-envs", "8",
             "--train.total-timesteps", "512", "--logging.tensorboard", "false"],
        )  # fmt: skip
        summary = train(config, root=tmp_path, quiet=True)
        assert summary.timesteps == 512
        assert server.num_sessions == 0  # the run closed its session
    finally:
        server.stop()
