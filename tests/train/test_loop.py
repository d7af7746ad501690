"""Trainer: collection, truncation bootstrap, double buffering, determinism, resume."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from gymnasium import spaces

import fugu
from fugu.algos import PPO, PPOConfig
from fugu.core import PufferEnv
from fugu.core.errors import APIUsageError
from fugu.models import make_policy
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine

BUILD = """
import torch
from fugu.algos import PPO, PPOConfig
from fugu.models import PolicyConfig, make_policy
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs


def build(kind="mlp", double_buffer=True, env_id="cartpole-v1", rows=16, steps=8, seed=0):
    config = TrainConfig(total_timesteps=10**6, num_steps=steps, seed=seed,
                         double_buffer=double_buffer)
    envs = make_train_envs(env_id, rows, seed=seed, double_buffer=True)
    torch.manual_seed(seed)
    policy = make_policy(envs[0].single_observation_space, envs[0].single_action_space,
                         PolicyConfig(kind=kind, hidden_size=16))
    ppo = PPOConfig(seed=seed, update_epochs=2, num_minibatches=2, learning_rate=1e-3)
    return Trainer(envs, PPO(policy, ppo), config)
"""
namespace: dict = {}
exec(BUILD, namespace)
build = namespace["build"]


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.algo.policy.parameters()]


def test_train_epoch_metrics_and_counters():
    trainer = build()
    metrics = trainer.train_epoch()
    assert trainer.global_step == 16 * 8 == trainer.batch_size
    assert trainer.epoch == 1 and not trainer.done
    for key in ("perf/sps", "perf/rollout_s", "perf/update_s", "loss/policy", "loss/approx_kl"):
        assert np.isfinite(metrics[key]), key
    for _ in range(5):
        metrics = trainer.train_epoch()
    assert metrics["env/episode_length"] > 0 and metrics["env/num_episodes"] >= 1
    assert metrics["env/episode_return"] == pytest.approx(metrics["env/episode_length"])
    assert len(trainer.episode_returns) > 0 and trainer.mean_return > 0
    trainer.close()
    trainer.close()


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_double_buffer_equals_single_buffer(kind):
    a, b = build(kind, double_buffer=True), build(kind, double_buffer=False)
    assert a.collector._pool is not None and b.collector._pool is None
    for _ in range(3):
        a.train_epoch()
        b.train_epoch()
    for x, y in zip(_params(a), _params(b)):
        assert torch.equal(x, y)
    a.close()
    b.close()


def test_two_seeded_runs_are_identical_and_seeds_matter():
    runs = []
    for seed in (0, 0, 1):
        trainer = build(seed=seed)
        for _ in range(3):
            trainer.train_epoch()
        runs.append(_params(trainer))
        trainer.close()
    assert all(torch.equal(x, y) for x, y in zip(runs[0], runs[1]))
    assert not all(torch.equal(x, y) for x, y in zip(runs[0], runs[2]))


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_resume_in_new_process_is_bitwise_identical(tmp_path, kind):
    straight = build(kind)
    for _ in range(4):
        straight.train_epoch()
    half = build(kind)
    for _ in range(2):
        half.train_epoch()
    torch.save(half.state_dict(), tmp_path / "state.pt")
    half.close()
    script = BUILD + textwrap.dedent(
        f"""
        import sys
        torch.set_num_threads(1)
        trainer = build({kind!r})
        trainer.load_state_dict(torch.load(sys.argv[1], weights_only=False))
        for _ in range(2):
            trainer.train_epoch()
        torch.save([p.detach() for p in trainer.algo.policy.parameters()], sys.argv[2])
        torch.save(trainer.state_dict(), sys.argv[3])
        """
    )
    (tmp_path / "resume.py").write_text(script)
    subprocess.run(
        [
            sys.executable,
            str(tmp_path / "resume.py"),
            str(tmp_path / "state.pt"),
            str(tmp_path / "params.pt"),
            str(tmp_path / "final.pt"),
        ],
        check=True,
    )
    resumed = torch.load(tmp_path / "params.pt")
    for x, y in zip(_params(straight), resumed):
        assert torch.equal(x, y)
    final = torch.load(tmp_path / "final.pt", weights_only=False)
    assert final["global_step"] == straight.global_step and final["epoch"] == 4
    for x, y in zip(straight.state_dict()["envs"], final["envs"]):
        assert all(np.array_equal(x[k], y[k]) for k in x)
    straight.close()


class _Clock(PufferEnv):
    """Obs is the step count (1-D); truncated at step 3, never terminated; reward 1."""

    def __init__(self, num_envs: int = 2, seed: int | None = None) -> None:
        super().__init__(spaces.Box(0, 10, (1,), np.float32), spaces.Discrete(2), num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)

    def reset(self, seed=None):
        self.t[:] = 0
        self.observations[:, 0] = 0
        return self.observations, []

    def step(self, actions):
        self._write_actions(actions)
        self.t += 1
        self.rewards[:] = 1.0
        self.terminals[:] = False
        self.truncations[:] = self.t == 3
        self.final_observations[self.truncations, 0] = 3.0
        self.t[self.truncations] = 0
        self.observations[:, 0] = self.t
        n = int(self.truncations.sum())
        infos = [{"episode_return": 3.0, "episode_length": 3.0, "num_episodes": n}] if n else []
        return self.observations, self.rewards, self.terminals, self.truncations, infos


def test_truncated_rows_bootstrap_the_final_observation():
    env = _Clock(2)
    policy = make_policy(env.single_observation_space, env.single_action_space)
    algo = PPO(policy, PPOConfig())
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=8))
    batch = trainer.collect()
    s = trainer.collector.storage
    assert batch["truncations"][:, 0].tolist() == [False, False, True, False]
    want = algo.bootstrap(torch.full((1, 1), 3.0), None)
    torch.testing.assert_close(s.final_values[2], want.expand(2))
    assert s.final_values[[0, 1, 3]].abs().sum() == 0
    assert batch["starts"][:, 0].tolist() == [True, False, False, True]
    torch.testing.assert_close(batch["next_values"][2], want.expand(2))
    torch.testing.assert_close(batch["next_values"][0], batch["values"][1])
    metrics = trainer._env_metrics()
    assert metrics["env/episode_return"] == 3.0 and trainer.done
    assert list(trainer.episode_returns) == [3.0, 3.0]  # exact, counted by the trainer
    trainer.close()


def test_gymnasium_env_without_state_and_errors():
    env = fugu.make("CartPole-v1")
    policy = make_policy(env.single_observation_space, env.single_action_space)
    algo = PPO(policy, PPOConfig())
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=8))
    trainer.train()
    assert trainer.done and trainer.state_dict()["envs"] == [None]
    with pytest.raises(APIUsageError, match="at least one"):
        Trainer([], algo)
    with pytest.raises(APIUsageError, match="shards"):
        state = trainer.state_dict()
        state["envs"] = [None, None]
        trainer.load_state_dict(state)
    with pytest.raises(APIUsageError):
        make_train_envs("cartpole-v1", 0)
    with pytest.raises(APIUsageError):
        TrainConfig(num_steps=0)
    trainer.close()


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_cuda_collection_and_update(kind):
    envs = make_train_envs("cartpole-v1", 16, seed=0)
    config = TrainConfig(total_timesteps=256, num_steps=8, device="cuda")
    policy = make_policy(envs[0].single_observation_space, envs[0].single_action_space)
    if kind == "lstm":
        from fugu.models import PolicyConfig

        policy = make_policy(
            envs[0].single_observation_space,
            envs[0].single_action_space,
            PolicyConfig(kind="lstm", hidden_size=16),
        )
    algo = PPO(policy, PPOConfig(amp="fp16"), device="cuda")
    trainer = Trainer(envs, algo, config)
    assert trainer.shards[0].pinned is not None and trainer.shards[0].pinned.is_pinned()
    metrics = trainer.train()
    assert trainer.done and np.isfinite(metrics["loss/policy"])
    assert trainer.collector.storage.tensors["observations"].is_cuda
    state = trainer.state_dict()
    trainer.load_state_dict(state)
    trainer.close()


class _HalfDead(_Clock):
    """Row 1 is never a live agent."""

    def reset(self, seed=None):
        self.masks[:] = [True, False]
        return super().reset(seed)


def test_dead_rows_are_masked_out_of_the_update():
    env = _HalfDead(2)
    policy = make_policy(env.single_observation_space, env.single_action_space)
    algo = PPO(policy, PPOConfig(num_minibatches=1))
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=8))
    batch = trainer.collect()
    masks = batch["masks"]
    assert masks[:, 1].sum() == 0 and masks[:, 0].all()
    assert batch["rewards"][:, 1].abs().sum() == 0  # nothing is credited to a never-live row
    assert np.isfinite(algo.update(batch)["loss/policy"])
    trainer.close()
    clock = Trainer(_Clock(2), algo, TrainConfig(num_steps=2, total_timesteps=4))
    assert clock.collect()["masks"].all()
