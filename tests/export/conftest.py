"""Tiny trained recurrent and convolutional runs, shared by the export tests."""

from __future__ import annotations

import pytest

from fugu.cli.main import main

_COMMON = ["--quiet", "--env.num-envs", "4", "--train.num-steps", "16",
           "--train.total-timesteps", "64", "--logging.tensorboard", "false"]  # fmt: skip

_RUNS = {
    "lstm": ["cartpole-v1", "--policy.kind", "lstm", "--policy.hidden-size", "16"],
    "cnn": ["breakout-v1", "--policy.kind", "cnn", "--policy.hidden-size", "16",
            "--policy.cnn-channels", "[4, 8, 8]", "--env.kwargs", '{"obs_mode": "pixels"}'],
}  # fmt: skip


@pytest.fixture(scope="session")
def deep_runs(tmp_path_factory):
    """``name -> run dir`` of an LSTM cartpole policy and a CNN breakout-pixels policy, trained
    on the first request of each (a few seconds)."""
    root = tmp_path_factory.mktemp("deep-runs")
    made: dict = {}

    def get(name: str):
        if name not in made:
            run = root / name
            env, *extra = _RUNS[name]
            assert main(["train", env, "--run-dir", str(run), *_COMMON, *extra]) == 0
            made[name] = run
        return made[name]

    return get
