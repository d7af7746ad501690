"""GRPO / DAPO on envs: seed groups, group advantages, learning, dynamic sampling, switches,
determinism, state round trips and the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

import fugu.algos.grpo as grpo_module
from fugu.algos.grpo import DAPO, GRPO, DAPOConfig, GRPOConfig, seed_group_episodes
from fugu.algos.registry import get_algorithm
from fugu.buffers import Batch
from fugu.cli.main import main
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig, make_policy
from fugu.ops.group import group_advantages
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)

POLICY = PolicyConfig(hidden_size=32, activation="tanh", norm_obs=False)


def _trainer(env_id="cartpole-v1", num_envs=16, num_steps=64, seed=0, algo_cls=GRPO, **kw):
    envs = make_train_envs(env_id, num_envs, seed=seed, double_buffer=False)
    torch.manual_seed(seed)
    config = algo_cls.config_type(seed=seed, **kw)
    algo = algo_cls.build(
        config, envs[0].single_observation_space, envs[0].single_action_space, POLICY
    )
    train = TrainConfig(num_steps=num_steps, total_timesteps=10**9, seed=seed, double_buffer=False)
    return Trainer(envs, algo, train)


def _params(algo):
    return [p.detach().clone() for p in algo.policy.parameters()]


def test_rows_of_a_group_start_from_identical_states_and_advantages_are_relative():
    trainer = _trainer(group_size=4, num_envs=16, num_steps=200)
    first = None
    for _ in range(2):
        batch = trainer.collect()
        start = batch["observations"][0]
        groups = start.reshape(4, 4, -1)
        assert torch.equal(groups, groups[:, :1].expand_as(groups))  # identical in a group
        assert len({tuple(g[0].tolist()) for g in groups}) == 4  # different across groups
        assert bool(batch["starts"][0].all())
        if first is not None:
            assert not torch.equal(first, start)  # fresh seeds each collection
        first = start.clone()
    eps = seed_group_episodes(batch.data, trainer.algo.group_of_rows(16))
    assert eps["returns"].numel() == 16  # the first episode of every row
    adv = group_advantages(eps["returns"], eps["groups"])
    for g in torch.unique(eps["groups"]):
        members = adv[eps["groups"] == g]
        assert abs(float(members.mean())) < 1e-5
    # returns differ inside groups (sampled actions), so the advantages carry signal
    assert float(adv.abs().sum()) > 0
    trainer.close()


def test_seed_group_episodes_splits_rows_and_flags_overlong():
    rewards = torch.ones(4, 3)
    terminals = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=torch.bool)
    truncations = torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
    data = {"rewards": rewards, "terminals": terminals, "truncations": truncations}
    first = seed_group_episodes(data, torch.tensor([0, 0, 1]))
    assert first["returns"].tolist() == [2.0, 2.0, 4.0]
    assert first["overlong"].tolist() == [False, True, True]  # time limit / unfinished
    assert first["groups"].tolist()[0] == first["groups"].tolist()[1]
    later = seed_group_episodes(data, torch.tensor([0, 0, 1]), later_episodes=True)
    # row 0's second episode (steps 2-3) is kept; unfinished later episodes are not
    assert later["returns"].tolist() == [2.0, 2.0, 2.0, 4.0]
    assert sorted(later["position"].tolist()) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 3]


def test_grpo_learns_the_observation_probe():
    trainer = _trainer("probe-observation-v1", num_envs=64, num_steps=1, learning_rate=1e-2)
    for _ in range(60):
        trainer.train_epoch()
    assert trainer.episodes.mean_return(last=64) > 0.9  # random: 0, optimal: 1
    trainer.close()


def test_grpo_improves_cartpole_within_seconds():
    trainer = _trainer(
        num_envs=64, num_steps=200, learning_rate=1e-2, group_size=8, use_later_episodes=True
    )
    trainer.train_epoch()
    before = trainer.mean_return
    for _ in range(8):
        trainer.train_epoch()
    assert before < 40 and trainer.mean_return > 2 * before
    trainer.close()


def _synthetic(returns_per_row, rows_per_group=2, steps=3, seed=0):
    """A rollout whose rows all end their first episode at step 0 with these returns."""
    rows = len(returns_per_row)
    g = torch.Generator().manual_seed(seed)
    terminals = torch.zeros(steps, rows, dtype=torch.bool)
    terminals[0] = True
    rewards = torch.zeros(steps, rows)
    rewards[0] = torch.tensor(returns_per_row, dtype=torch.float32)
    data = {
        "observations": torch.randn(steps, rows, 4, generator=g),
        "actions": torch.randint(0, 2, (steps, rows), generator=g),
        "logprobs": torch.full((steps, rows), float(np.log(0.5))),
        "rewards": rewards,
        "terminals": terminals,
        "truncations": torch.zeros(steps, rows, dtype=torch.bool),
        "masks": torch.ones(steps, rows, dtype=torch.bool),
        "starts": torch.zeros(steps, rows, dtype=torch.bool),
    }
    return Batch(data, None)


def _algo(config):
    torch.manual_seed(0)
    algo = GRPO(make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), POLICY), config)
    algo.reset_seeds(8, 8)  # 8 copies, one row each
    return algo


def test_dynamic_sampling_drops_flat_groups_and_refills_the_batch():
    algo = _algo(GRPOConfig(group_size=2, dynamic_sampling=True))
    start = _params(algo)
    # 4 groups of 2 rows; only group 0 has different returns
    m1 = algo.update(_synthetic([1, 0, 1, 1, 0, 0, 5, 5]))
    assert m1["train/updated"] == 0.0 and m1["train/kept_groups"] == 1.0
    assert m1["train/signal_groups"] == 1.0 and m1["train/groups"] == 4.0
    assert all(torch.equal(a, b) for a, b in zip(start, _params(algo)))  # waiting, no step
    m2 = algo.update(_synthetic([1, 1, 0, 1, 2, 0, 0, 0], seed=1))  # two more groups
    assert m2["train/updated"] == 0.0 and m2["train/kept_groups"] == 3.0
    m3 = algo.update(_synthetic([0, 1, 0, 0, 0, 0, 0, 0], seed=2))
    assert m3["train/updated"] == 1.0 and m3["train/kept_groups"] == 4.0  # a full batch
    assert m3["train/refill_rounds"] == 2.0 and m3["train/refill_steps"] == 2 * 3 * 8
    assert any(not torch.equal(a, b) for a, b in zip(start, _params(algo)))
    # without dynamic sampling the first batch is learned from at once
    plain = _algo(GRPOConfig(group_size=2))
    assert plain.update(_synthetic([1, 0, 1, 1, 0, 0, 5, 5]))["train/updated"] == 1.0


def test_dynamic_sampling_gives_up_after_max_refill_rounds():
    trainer = _trainer("probe-constant-v1", num_envs=8, num_steps=2, group_size=4,
                       dynamic_sampling=True, max_refill_rounds=3)  # fmt: skip
    updated = [trainer.train_epoch()["train/updated"] for _ in range(4)]
    assert updated == [0.0, 0.0, 0.0, 1.0]  # constant rewards: no group ever has signal
    trainer.close()


def test_clip_higher_and_step_level_switches_reach_the_loss(monkeypatch):
    calls = []
    real = grpo_module.grouped_clip_loss

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo_module, "grouped_clip_loss", spy)
    batch = _synthetic([1, 0, 0, 1, 1, 0, 2, 0])
    _algo(GRPOConfig(group_size=2, clip_high=0.28, step_level_loss=True)).update(batch)
    assert calls and all(c["clip_high"] == 0.28 and c["token_level"] for c in calls)
    calls.clear()
    _algo(GRPOConfig(group_size=2)).update(batch)
    assert all(c["clip_high"] is None and not c["token_level"] for c in calls)
    dapo = DAPOConfig()
    assert (dapo.clip_high, dapo.dynamic_sampling, dapo.step_level_loss, dapo.overlong_filter,
            dapo.kl_coef) == (0.28, True, True, True, 0.0)  # fmt: skip
    assert get_algorithm("dapo") is DAPO and get_algorithm("grpo") is GRPO


def test_clip_higher_changes_the_update():
    batch = _synthetic([1, 0, 0, 1, 1, 0, 2, 0])
    base = dict(group_size=2, update_epochs=8, num_minibatches=1, learning_rate=0.05)
    low, high = _algo(GRPOConfig(**base)), _algo(GRPOConfig(**base, clip_high=0.5))
    low.update(batch), high.update(batch)
    assert any(not torch.equal(a, b) for a, b in zip(_params(low), _params(high)))


def test_overlong_filter_and_soft_punishment():
    # rows 0-1: group 0; row 0 ends at step 0, row 1 is cut by the horizon (overlong)
    batch = _synthetic([0, 1, 1, 0, 1, 0, 1, 0])
    batch.data["terminals"][0, 1] = False
    algo = _algo(GRPOConfig(group_size=2, overlong_filter=True))
    data, stats = algo._episodes_of(batch)
    assert data["loss_mask"].tolist() == [True, False, True, True, True, True, True, True]
    assert stats["train/overlong_frac"] == pytest.approx(1 / 8)
    assert data["advantages"][1] > data["advantages"][0]  # the long episode scored more
    soft = _algo(GRPOConfig(group_size=2, overlong_buffer=2, max_episode_steps=3))
    data, _ = soft._episodes_of(batch)
    # row 1 lasts 3 steps: the full punishment (-1) takes its return to row 0's
    assert data["advantages"][:2].tolist() == [0.0, 0.0]
    assert bool(data["loss_mask"].all())  # punishment alone filters nothing


def test_kl_to_reference_is_logged_and_reference_saved():
    algo = _algo(GRPOConfig(group_size=2, kl_coef=0.1, update_epochs=4))
    metrics = algo.update(_synthetic([1, 0, 0, 1, 1, 0, 2, 0]))
    assert metrics["loss/kl_ref"] > 0.0
    assert set(algo.modules()) == {"policy", "reference"}


def _run(trainer, epochs):
    for _ in range(epochs):
        trainer.train_epoch()
    return _params(trainer.algo)


def test_seeded_runs_are_identical_and_resume_continues_exactly():
    kw = dict(group_size=4, num_envs=8, num_steps=40, dynamic_sampling=True)
    a, b = _trainer(**kw), _trainer(**kw)
    assert all(torch.equal(x, y) for x, y in zip(_run(a, 3), _run(b, 3)))
    state = copy.deepcopy(a.state_dict())
    full = _run(a, 3)
    c = _trainer(**kw)
    c.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(full, _run(c, 3)))
    for t in (a, b, c):
        t.close()


def test_bad_input_is_rejected_clearly():
    with pytest.raises(APIUsageError, match="group_size"):
        GRPOConfig(group_size=1)
    algo = GRPO(make_policy(spaces.Box(-1, 1, (4,)), spaces.Discrete(2)), GRPOConfig(group_size=3))
    with pytest.raises(APIUsageError, match="multiple of group_size"):
        algo.reset_seeds(8, 8)


def test_cli_trains_grpo_on_cartpole(tmp_path, capsys):
    args = ["train", "cartpole-v1", "--algo", "grpo", "--env.num-envs", "16",
            "--train.num-steps", "32", "--train.total-timesteps", "1024",
            "--grpo.group-size", "4", "--run-dir", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    assert main(args) == 0
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert any("train/kept_groups" in m for m in metrics)
