"""The data plane reaches the learner: declared env fields in the batch through every backend,
action masks end to end, live samples only, schedules over rows, seeds per copy, clean state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.algos import PPO, PPOConfig
from fugu.buffers import Batch
from fugu.train.build import build_trainer
from fugu.train.config import TrainConfig
from fugu.train.evaluate import evaluate_policy
from fugu.train.experiment import ExperimentConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine


class RecordingPPO(PPO):
    """PPO that also stores the env's ``costs`` and keeps every batch it learns from."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[Batch] = []

    def storage_fields(self, env_fields):
        fields = dict(super().storage_fields(env_fields))
        if "costs" in env_fields:
            fields["costs"] = env_fields["costs"]
        return fields

    def update(self, batch, progress=0.0):
        self.batches.append(Batch({k: v.clone() for k, v in batch.items()}))
        return super().update(batch, progress)


def _recording_trainer(env_id, backend, env_kwargs, rows=4, steps=16, epochs=2):
    config = ExperimentConfig.from_preset(
        env_id,
        {
            "env.backend": backend,
            "env.num_envs": rows,
            "env.kwargs": env_kwargs,
            "env.threads": 2 if backend == "multiprocessing" else 1,
            "train.num_steps": steps,
            "train.total_timesteps": rows * steps * epochs,
            "train.double_buffer": False,
        },
    )
    envs = build_trainer(config).envs  # the backend's env, built as a run builds it
    torch.manual_seed(0)
    from fugu.models import PolicyConfig, make_policy

    policy = make_policy(
        envs[0].single_observation_space, envs[0].single_action_space, PolicyConfig(hidden_size=8)
    )
    algo = RecordingPPO(policy, PPOConfig(seed=0, update_epochs=1))
    return Trainer(envs, algo, config.train)


CASES = {
    "costs": ("hazard-nav-v1", {}),
    "action_masks": ("connect4-v1", {"opponent": "random", "illegal_move": "random"}),
}


@pytest.mark.parametrize("field", list(CASES))
def test_declared_fields_reach_the_batch_through_every_backend(field):
    env_id, env_kwargs = CASES[field]
    batches = {}
    for backend in ("native", "serial", "multiprocessing"):
        trainer = _recording_trainer(env_id, backend, env_kwargs)
        trainer.train()
        trainer.close()
        batches[backend] = trainer.algo.batches
        assert len(batches[backend]) == 2 and field in batches[backend][0]
    for backend in ("serial", "multiprocessing"):
        for got, want in zip(batches[backend], batches["native"]):
            for key in ("observations", "actions", "rewards", field):
                torch.testing.assert_close(got[key], want[key], msg=f"{backend} {key}")
    stored = torch.cat([b[field] for b in batches["native"]])
    if field == "costs":
        assert stored.dtype == torch.float32 and stored.shape == (32, 4)
        assert (stored > 0).any() and (stored == 0).any()  # the hazard was hit, not always
    else:
        # the stored masks are the legal columns the observation shows (obs[84:91])
        obs = torch.cat([b["observations"] for b in batches["native"]])
        assert stored.shape == (32, 4, 7)
        torch.testing.assert_close(stored, obs[..., 84:91] > 0.5)
        actions = torch.cat([b["actions"] for b in batches["native"]])
        assert stored.gather(-1, actions.unsqueeze(-1)).all()  # every move was legal


def _connect4_config(**overrides):
    base = {
        "env.num_envs": 32,
        "train.num_steps": 16,
        "train.total_timesteps": 64 * 16 * 4,
        "train.double_buffer": False,
        "ppo.lr_schedule": "linear",
        "ppo.update_epochs": 1,
        "policy.hidden_size": 16,
        "env.kwargs": {},  # self-play: two rows per game (the preset plays one_ply)
    }
    return ExperimentConfig.from_preset("connect4-v1", {**base, **overrides})


def test_masked_connect4_agent_never_plays_an_illegal_move():
    from fugu.envs.connect4 import Connect4
    from fugu.train.evaluate import PolicyActor

    trainer = build_trainer(_connect4_config())
    trainer.train()  # self-play: two rows per game, 4 epochs
    trainer.close()
    env = Connect4(num_envs=16, opponent="random", seed=1)
    result = evaluate_policy(env, trainer.algo, episodes=200)
    assert result.info_means["illegal"] == 0.0 and len(result.returns) == 200

    class Unmasked(PolicyActor):  # the same policy, with the env's masks withheld
        def act(self, obs, state, extras, deterministic=False):
            return super().act(obs, state, {}, deterministic)

    blind = evaluate_policy(env, Unmasked(trainer.algo.policy), episodes=200)
    assert blind.info_means["illegal"] > 0.0  # the check above can fail
    env.close()


def test_learning_rate_decays_over_rows_not_copies():
    # connect4 self-play has two rows per game: 32 games are 64 rows, 4 epochs of 64 x 16
    trainer = build_trainer(_connect4_config())
    rates = [trainer.train_epoch()["train/learning_rate"] for _ in range(4)]
    trainer.close()
    base = trainer.algo.config.learning_rate
    assert trainer.done
    np.testing.assert_allclose(rates, [base, 0.75 * base, 0.5 * base, 0.25 * base])


def test_double_buffered_shards_are_seeded_like_one_env():
    # snake has several snakes (rows) per grid (copy): shard seeds count copies
    shards = make_train_envs("snake-v1", 6, seed=3, double_buffer=True)
    whole = make_train_envs("snake-v1", 6, seed=3, double_buffer=False)[0]
    assert whole.num_agents > 6  # several rows per copy
    policy_env = shards[0]
    from fugu.models import make_policy

    policy = make_policy(policy_env.single_observation_space, policy_env.single_action_space)
    split = Trainer(shards, PPO(policy), TrainConfig(num_steps=2, total_timesteps=10**6))
    one = Trainer([whole], PPO(policy), TrainConfig(num_steps=2, total_timesteps=10**6))
    np.testing.assert_array_equal(
        np.concatenate([s.observations for s in shards]), whole.observations
    )
    split.close()
    one.close()


def test_checkpoint_state_has_no_global_rng_and_is_identical_across_runs():
    states = []
    for noise in (0, 1):
        torch.manual_seed(noise)  # the global RNGs differ between the two runs
        np.random.seed(noise)
        trainer = build_trainer(_connect4_config(**{"train.total_timesteps": 64 * 16 * 2}))
        trainer.train()
        states.append(trainer.state_dict())
        trainer.close()
    assert "rng" not in states[0]

    def same(a, b):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            return all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, torch.Tensor):
            return torch.equal(a, b)
        if isinstance(a, np.ndarray):
            return np.array_equal(a, b)
        return a == b

    assert same(states[0], states[1])


def test_dying_agents_are_not_live_after_their_last_step():
    pytest.importorskip("pettingzoo")
    from tests.bridges.test_pettingzoo import Classic

    from fugu.bridges.pettingzoo import PettingZooPufferEnv
    from fugu.models import make_policy

    env = PettingZooPufferEnv(Classic())
    policy = make_policy(env.single_observation_space, env.single_action_space)
    algo = PPO(policy, PPOConfig(seed=0))
    trainer = Trainer(env, algo, TrainConfig(num_steps=9, total_timesteps=9 * 2))
    batch = trainer.collect()
    # each 3-step episode: p0 acts 3 times, p1 twice (it dies on its second step)
    assert batch["masks"][:, 0].all()
    assert batch["masks"][:, 1].tolist() == [True, True, False] * 3
    assert int(batch["masks"].sum()) == 5 * 3
    # p1's reward and end of episode sit on its last live step
    assert batch["terminals"][:, 1].tolist() == [False, True, False] * 3
    # one-hot action masks: every live action was the legal one
    legal = batch["action_masks"].float().argmax(-1)
    assert torch.equal(batch["actions"][batch["masks"]], legal[batch["masks"]])
    assert np.isfinite(algo.update(batch, 0.0)["loss/policy"])
    trainer.close()
