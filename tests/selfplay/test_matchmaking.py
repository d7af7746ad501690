"""Matchmaking on one vec env: learner rows stored, opponents batched, both seats, no gradient
to the opponents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.core.errors import APIUsageError
from fugu.selfplay.bots import OnePlyBot, RandomBot
from fugu.selfplay.matchmaking import Matchmaker
from fugu.selfplay.pool import PolicyPool
from fugu.train.build import build_trainer
from fugu.train.experiment import ExperimentConfig


def _config(num_games: int = 16):
    return ExperimentConfig.from_preset(
        "connect4-v1",
        {
            "env.num_envs": num_games,
            "train.num_steps": 16,
            "train.total_timesteps": 10**6,
            "policy.hidden_size": 16,
            "ppo.update_epochs": 1,
            "env.kwargs": {},  # the two-player mode (the preset plays one_ply)
        },
    )


def test_rows_partition_the_env_and_alternate_per_game():
    m = Matchmaker(num_games=10, num_slots=3, num_mirror_games=4)
    rows = np.sort(np.concatenate([m.learner_rows, m.opponent_rows]))
    np.testing.assert_array_equal(rows, np.arange(20))
    slot_games = np.concatenate(m.slot_games)
    mine = 2 * slot_games + slot_games % 2
    assert set(mine) <= set(m.learner_rows) and not set(mine) & set(m.opponent_rows)
    assert sorted(len(g) for g in m.slot_games) == [2, 2, 2]
    with pytest.raises(APIUsageError, match="num_slots"):
        Matchmaker(num_games=4, num_slots=3, num_mirror_games=2)


class _Counting:
    """An actor that records the rows it was asked about (the batch per policy)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def initial_state(self, n):
        return None

    def reset_state(self, state, starts):
        return None

    def act(self, obs, state, extras, deterministic=False):
        self.calls.append(len(obs))
        return self.inner.act(obs, state, extras, deterministic)


def test_learner_plays_both_seats_only_its_rows_are_stored_and_gradients_skip_opponents(tmp_path):
    num_games = 16
    m = Matchmaker(num_games, num_slots=4, num_mirror_games=0)
    config = _config(num_games)
    probe = build_trainer(config)  # for a policy of the learner's shape
    pool = PolicyPool(tmp_path, capacity=2)
    pool.add_snapshot(probe.algo.policy, 0, 0)
    probe.close()
    frozen = pool.actor("snap-000000", probe.algo.policy)
    before = {k: v.clone() for k, v in frozen.policy.state_dict().items()}
    counting = _Counting(frozen)
    bot = _Counting(RandomBot(1))
    mux = m.mux([counting, bot, counting, bot])
    trainer = build_trainer(config, policy_map=m.policy_map(mux))
    learner_before = {k: v.clone() for k, v in trainer.algo.policy.state_dict().items()}
    assert trainer.num_stored == num_games  # one row per game
    firsts = seconds = 0
    for _ in range(6):
        trainer.train_epoch()
        batch = trainer.collector.storage.tensors
        obs, masks, starts = batch["observations"], batch["masks"], batch["starts"]
        # a game's first observation of the learner says whose turn it is (obs[91])
        assert (obs[..., :84][starts] == 0).all()  # a new game: an empty board
        turn = obs[..., 91] > 0.5
        firsts += int((starts & turn).sum())
        seconds += int((starts & ~turn).sum())
        assert masks.any() and not masks.all()  # the learner waits on the opponents' turns
    assert firsts > 10 and seconds > 10  # both seats, about equally
    assert abs(firsts - seconds) <= 0.3 * (firsts + seconds)
    # each distinct opponent was called once per step on all the rows of its slots
    assert set(counting.calls) == {8} and set(bot.calls) == {8}
    for k, v in frozen.policy.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the opponent did not learn
    assert all(p.grad is None for p in frozen.policy.parameters())
    changed = any(
        not torch.equal(v, learner_before[k]) for k, v in trainer.algo.policy.state_dict().items()
    )
    assert changed  # the learner did
    trainer.close()


def test_tally_counts_every_finished_slot_game(tmp_path):
    num_games = 8
    m = Matchmaker(num_games, num_slots=2, num_mirror_games=2)
    mux = m.mux([OnePlyBot(1), RandomBot(2)])
    trainer = build_trainer(_config(num_games), policy_map=m.policy_map(mux))
    trainer.train_epoch()
    t = trainer.collector.storage.tensors
    results = m.tally(t["rewards"], t["terminals"] | t["truncations"])
    slot_columns = torch.cat(m.slot_columns)
    ended = int((t["terminals"][:, slot_columns]).sum())
    assert sum(sum(r) for r in results) == ended > 0
    trainer.close()
