"""Collection kinds and shared machinery: replay rings, offline datasets, several policies on one
vec env (only the learner's rows stored), reward hooks, exact episode statistics."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos import PPO, ActOutput, PPOConfig
from fugu.algos.base import ReplaySettings
from fugu.buffers import Batch
from fugu.core.schema import Field
from fugu.models import make_policy
from fugu.train.config import TrainConfig
from fugu.train.episodes import EpisodeTracker
from fugu.train.loop import Trainer, make_train_envs
from fugu.train.policy_map import RowPolicyMap

from .test_loop import _Clock

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine


class TinyDQN:
    """One-step Q-learning with a linear Q-function: enough to prove the replay path."""

    name: ClassVar[str] = "tiny_dqn"
    config_type: ClassVar[type] = dict
    collection: ClassVar[str] = "replay"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete",)
    dashboard_metrics: ClassVar[tuple[str, ...]] = ("loss/td",)

    def __init__(self, obs_size: int, num_actions: int, gamma: float = 0.9) -> None:
        self.device = torch.device("cpu")
        self.q = torch.nn.Linear(obs_size, num_actions)
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=0.05)
        self.gamma = gamma
        self.generator = torch.Generator().manual_seed(0)
        self.seen: list[Batch] = []

    def replay_settings(self) -> ReplaySettings:
        return ReplaySettings(capacity=64, batch_size=32, gradient_steps=4, learning_starts=16)

    def storage_fields(self, env_fields):
        return {}

    def initial_state(self, num_rows):
        return None

    def reset_state(self, state, starts):
        return state

    def act(self, obs, state, extras, deterministic=False):
        with torch.no_grad():
            greedy = self.q(obs).argmax(-1)
        explore = torch.rand(len(obs), generator=self.generator) < 0.3
        random = torch.randint(0, 2, (len(obs),), generator=self.generator)
        return ActOutput(torch.where(explore & ~torch.tensor(deterministic), random, greedy), {})

    def bootstrap(self, obs, state):
        raise AssertionError("replay algorithms bootstrap from next_observations themselves")

    def update(self, batch, progress):
        self.seen.append(batch)
        q = self.q(batch["observations"]).gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            nxt = self.q(batch["next_observations"]).max(-1).values
            target = batch["rewards"] + self.gamma * (~batch["terminals"]).float() * nxt
        loss = torch.nn.functional.mse_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss/td": float(loss.detach())}

    def modules(self):
        return {"q": self.q}

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])


def test_replay_stores_final_observations_of_ended_episodes():
    env = _Clock(2)  # obs = step count; truncated at step 3 (final obs 3), reward 1
    algo = TinyDQN(1, 2)
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=40))
    trainer.train_epoch()  # 8 transitions < learning_starts: stored, no update yet
    assert len(trainer.replay) == 8 and not algo.seen
    stored = trainer.replay.tensors
    obs, nxt = stored["observations"][:8, 0], stored["next_observations"][:8, 0]
    trunc = stored["truncations"][:8]
    assert torch.equal(nxt[trunc], torch.full((int(trunc.sum()),), 3.0))  # final obs, not 0
    assert torch.equal(nxt[~trunc], obs[~trunc] + 1)
    metrics = trainer.train_epoch()
    assert len(algo.seen) == 4 and algo.seen[0]["observations"].shape == (32, 1)
    assert "loss/td" in metrics and metrics["train/replay_size"] == 16
    state = trainer.state_dict()
    assert state["replay"]["size"] == 16
    trainer.close()


def test_replay_algorithm_learns_the_observation_probe():
    envs = make_train_envs("probe-observation-v1", 16, seed=0, double_buffer=False)
    algo = TinyDQN(1, 2, gamma=0.0)
    trainer = Trainer(envs, algo, TrainConfig(num_steps=4, total_timesteps=16 * 4 * 30))
    trainer.train()
    trainer.close()
    assert trainer.episodes.mean_return(50) > 0.6  # 0.3 exploration caps it below 1


class BehaviourCloning:
    """Offline: fit the policy's logits to dataset actions."""

    name: ClassVar[str] = "bc"
    config_type: ClassVar[type] = dict
    collection: ClassVar[str] = "offline"
    action_spaces: ClassVar[tuple[str, ...]] = ("discrete",)
    dashboard_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, policy) -> None:
        self.device = torch.device("cpu")
        self.ppo = PPO(policy)
        self.policy = policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=0.05)

    def storage_fields(self, env_fields):
        return {}

    def initial_state(self, num_rows):
        return None

    def reset_state(self, state, starts):
        return state

    def act(self, obs, state, extras, deterministic=False):
        return self.ppo.act(obs, state, extras, deterministic)

    def bootstrap(self, obs, state):
        raise AssertionError("not used offline")

    def update(self, batch, progress):
        params, _, _ = self.policy.forward_train(batch["observations"], None)
        loss = -self.policy.distribution.log_prob(params, batch["actions"]).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss/bc": float(loss.detach())}

    def modules(self):
        return {"policy": self.policy}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_offline_algorithm_learns_from_a_dataset_without_stepping():
    env = make_train_envs("probe-observation-v1", 4, double_buffer=False)[0]
    obs = torch.randint(0, 2, (64, 1)).float()
    dataset = [Batch({"observations": obs, "actions": obs[:, 0].long()})]  # the right action
    policy = make_policy(env.single_observation_space, env.single_action_space)
    algo = BehaviourCloning(policy)
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=64 * 40),
                      dataset=dataset)  # fmt: skip
    before = env.observations.copy()
    metrics = trainer.train()
    assert trainer.global_step == 64 * 40 and metrics["loss/bc"] < 0.1
    assert np.array_equal(env.observations, before)  # no env step
    trainer.close()


class Constant:
    """A scripted actor: always action ``k``."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.calls = 0

    def initial_state(self, num_rows):
        return None

    def reset_state(self, state, starts):
        return state

    def act(self, obs, state, extras, deterministic=False):
        self.calls += 1
        return ActOutput(torch.full((len(obs),), self.k, dtype=torch.int64), {})


def test_policy_map_stores_only_the_learner_rows():
    # probe-multiagent: row k's reward is 1 iff it plays k % 2 (two agents per copy)
    envs = make_train_envs("probe-multiagent-v1", 4, seed=0, double_buffer=True)
    num_rows = sum(e.num_agents for e in envs)
    learner = np.arange(0, num_rows, 2)
    opponent = Constant(0)
    mapping = RowPolicyMap(learner, [(opponent, np.arange(1, num_rows, 2))])
    policy = make_policy(envs[0].single_observation_space, envs[0].single_action_space)
    config = TrainConfig(num_steps=4, total_timesteps=10**6)
    trainer = Trainer(envs, PPO(policy, PPOConfig(seed=0)), config, policy_map=mapping)
    batch = trainer.collect()
    assert trainer.num_stored == num_rows // 2 and batch["rewards"].shape == (4, num_rows // 2)
    assert opponent.calls == 4 * len(envs)
    # the opponent's rows played its action: their (unstored) rows hold action 0
    for env in envs:
        assert (env.actions[1::2] == 0).all()
    assert trainer.batch_size == 4 * num_rows // 2
    trainer.collector.set_policy_map(
        RowPolicyMap(learner, [(Constant(1), np.arange(1, num_rows, 2))])
    )
    trainer.collect()
    assert all((env.actions[1::2] == 1).all() for env in envs)
    trainer.close()
    with pytest.raises(Exception, match="exactly one actor"):
        RowPolicyMap(learner, []).check(num_rows)


class Bonus:
    name = "bonus"

    def __init__(self) -> None:
        self.updates = 0

    def rewards(self, batch):
        return torch.full_like(batch["rewards"], 0.5)

    def update(self, batch):
        self.updates += 1
        return {"reward/bonus_updates": float(self.updates)}


def test_reward_hooks_add_rewards_before_the_update():
    env = _Clock(2)
    policy = make_policy(env.single_observation_space, env.single_action_space)

    class Seeing(PPO):
        def update(self, batch, progress=0.0):
            self.rewards = batch["rewards"].clone()
            return super().update(batch, progress)

    algo = Seeing(policy, PPOConfig())
    hook = Bonus()
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=8), reward_hooks=[hook])
    metrics = trainer.train_epoch()
    assert torch.equal(algo.rewards, torch.full((4, 2), 1.5))  # env's 1 + the hook's 0.5
    assert metrics["reward/bonus_mean"] == 0.5 and metrics["reward/bonus_updates"] == 1.0
    assert list(trainer.episode_returns) == [3.0, 3.0]  # episodes count the env's rewards
    trainer.close()


def test_episode_tracker_is_exact_where_aggregated_infos_are_not():
    envs = make_train_envs("cartpole-v1", 32, seed=0, double_buffer=False)
    policy = make_policy(envs[0].single_observation_space, envs[0].single_action_space)
    trainer = Trainer(envs, PPO(policy), TrainConfig(num_steps=64, total_timesteps=10**6))
    batch = trainer.collect()
    rewards, dones = batch["rewards"], batch["terminals"] | batch["truncations"]
    want = []
    running = np.zeros(32)
    for t in range(64):
        running += rewards[t].numpy()
        for n in np.flatnonzero(dones[t].numpy()):
            want.append(running[n])
            running[n] = 0
    assert want and list(trainer.episode_returns) == want
    assert len(set(want)) > 1  # different returns: replicating a mean would not give them
    tracker = EpisodeTracker(1, window=2)
    tracker.add_rollout(torch.ones(5, 1), torch.tensor([[True], [True], [False], [True], [False]]))
    assert list(tracker.returns) == [1.0, 2.0] and tracker.mean_return() == 1.5
    trainer.close()


def test_fields_an_algorithm_declares_are_stored_from_act():
    env = _Clock(2)
    policy = make_policy(env.single_observation_space, env.single_action_space)

    class WithEntropy(PPO):
        def storage_fields(self, env_fields):
            return {**super().storage_fields(env_fields), "noise": Field("noise", (3,))}

        def act(self, obs, state, extras, deterministic=False):
            out = super().act(obs, state, extras, deterministic)
            noise = torch.arange(3.0).expand(len(obs), 3)
            return ActOutput(out.actions, {**out.fields, "noise": noise}, out.state)

    trainer = Trainer(env, WithEntropy(policy), TrainConfig(num_steps=4, total_timesteps=8))
    batch = trainer.collect()
    assert batch["noise"].shape == (4, 2, 3) and batch["noise"][..., 2].eq(2).all()
    trainer.close()


def test_unsupported_action_space_is_a_clear_error():
    from fugu.algos.base import check_action_space
    from fugu.core.errors import APIUsageError

    with pytest.raises(APIUsageError, match="does not support box"):
        check_action_space(TinyDQN, spaces.Box(-1, 1, (2,)))


def test_episode_tracker_matches_a_per_step_reference_across_rollouts():
    g = torch.Generator().manual_seed(0)
    tracker = EpisodeTracker(5, window=1000)
    running, lengths, want, want_lengths = np.zeros(5), np.zeros(5), [], []
    for _ in range(4):  # episodes span rollout boundaries
        rewards = torch.randint(-3, 4, (7, 5), generator=g).float()
        dones = torch.rand(7, 5, generator=g) < 0.25
        tracker.add_rollout(rewards, dones)
        for t in range(7):
            running += rewards[t].numpy()
            lengths += 1
            for n in np.flatnonzero(dones[t].numpy()):
                want.append(running[n])
                want_lengths.append(lengths[n])
                running[n] = lengths[n] = 0
    assert list(tracker.returns) == want and list(tracker.lengths) == want_lengths
    np.testing.assert_array_equal(tracker.running_return.numpy(), running)


def test_gradient_recorder_skips_frozen_parameters():
    from fugu.train.diagnostics import GradientRecorder

    net, frozen = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    frozen.requires_grad_(False)
    recorder = GradientRecorder({"net": net, "target": frozen})
    recorder.active = True
    (net(torch.ones(1, 2)) + frozen(torch.ones(1, 2))).sum().backward()
    assert set(recorder.grads) == {"net.weight", "net.bias"}
    recorder.close()
