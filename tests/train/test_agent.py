"""The Python API: fugu.train / fugu.learn return an Agent (any registered algorithm) that
predicts, evaluates and saves; fugu.load reads it back; mistakes are one clear error."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import fugu
from fugu.checkpoint import CheckpointError
from fugu.core.errors import APIUsageError, UnknownEnvError

TINY = {"total_timesteps": 512, "num_envs": 4, "num_steps": 32, "ppo.update_epochs": 1}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    run = tmp_path_factory.mktemp("agent") / "run"
    return fugu.train("cartpole-v1", run_dir=run, **TINY)


def test_train_returns_an_agent_that_predicts(agent):
    assert isinstance(agent, fugu.Agent) and repr(agent) == "Agent(env='cartpole-v1', algo='ppo')"
    assert agent.summary.timesteps == 512 and agent.config.env.num_envs == 4
    single = agent.predict(np.zeros(4, np.float32))
    assert isinstance(single, int) and single in (0, 1)
    batch = agent.predict(np.zeros((5, 4)), deterministic=False)
    assert batch.shape == (5,) and set(batch.tolist()) <= {0, 1}
    with pytest.raises(APIUsageError, match=r"one observation of shape \(4,\)"):
        agent.predict(np.zeros(3))


def test_save_load_round_trip_and_evaluate(agent, tmp_path):
    path = agent.save(tmp_path / "saved")
    loaded = fugu.load(tmp_path / "saved")
    assert loaded.path == path and loaded.env_id == "cartpole-v1"
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    result = loaded.evaluate(episodes=3, num_envs=3)
    assert len(result.returns) == 3 and result.mean_return > 0
    # a run dir loads its best checkpoint
    run_dir = Path(agent.summary.run_dir)
    assert fugu.load(run_dir).path == Path(agent.summary.best_checkpoint)


def test_load_mistakes(tmp_path):
    with pytest.raises(CheckpointError, match="no such file or directory"):
        fugu.load(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no valid checkpoint"):
        fugu.load(tmp_path)


def test_train_mistakes_raise_before_anything_is_written(tmp_path):
    root = tmp_path / "runs"
    with pytest.raises(UnknownEnvError, match="did you mean 'cartpole-v1'"):
        fugu.train("cartpol-v1", root=root)
    with pytest.raises(APIUsageError, match="an env id must be a string"):
        fugu.train(123, root=root)
    with pytest.raises(APIUsageError, match="unknown config section"):
        fugu.train("cartpole-v1", algo="nope", root=root)
    with pytest.raises(APIUsageError, match=r"did you mean --ppo\.learning-rate"):
        fugu.train("cartpole-v1", ppo__lr=1e-3, root=root)
    with pytest.raises(APIUsageError, match="unknown torch device"):
        fugu.train("cartpole-v1", device="tpu9", root=root)
    assert not root.exists()


def test_fugu_train_is_callable_and_import_fugu_stays_light():
    import subprocess

    # fugu.learn resolves fugu.train.agent, which needs torch; fugu.train alone must not
    light = subprocess.run(
        [sys.executable, "-c", "import sys, fugu; fugu.train; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert light.stdout.strip() == "False"
    assert callable(fugu.train)


def test_any_registered_algorithm(tmp_path):
    from fugu.algos import registry

    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    spec = importlib.util.spec_from_file_location("fugu_agent_a2c", examples / "a2c.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    registry.register_algorithm("a2c", module.A2C)
    try:
        agent = fugu.train(
            "probe-observation-v1",
            algo="a2c",
            run_dir=tmp_path / "run",
            total_timesteps=256,
            num_envs=8,
            num_steps=4,
            logging__tensorboard=False,
        )
        assert agent.config.algo == "a2c"
        loaded = fugu.load(agent.save(tmp_path / "a2c"))
        obs = np.zeros((2, *agent.observation_space.shape), np.float32)
        np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    finally:
        registry.unregister_algorithm("a2c")


def test_make_with_a_non_string_id_says_what_an_id_is():
    with pytest.raises(APIUsageError, match="an env id must be a string"):
        fugu.make(123)
