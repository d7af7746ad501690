"""The historical pool: safetensors snapshots, eviction, sampling rules, frozen actors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fugu.core.errors import APIUsageError
from fugu.models import make_policy
from fugu.selfplay.bots import OnePlyBot
from fugu.selfplay.pool import PolicyPool


def _policy(seed: int):
    from gymnasium import spaces

    torch.manual_seed(seed)
    return make_policy(spaces.Box(0, 1, (92,), np.float32), spaces.Discrete(7))


def test_snapshots_are_weight_files_and_eviction_keeps_the_newest(tmp_path):
    pool = PolicyPool(tmp_path, capacity=2, eviction="easiest", bots=("one_ply",))
    for epoch in (1, 2, 3):
        pool.add_snapshot(_policy(epoch), epoch, epoch * 10)
        if epoch == 1:
            pool.record("snap-000001", wins=1, draws=0, losses=9)  # hard: keep
        if epoch == 2:
            pool.record("snap-000002", wins=9, draws=0, losses=1)  # easy: evict first
    assert pool.names() == ["bot:one_ply", "snap-000001", "snap-000003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "snap-000001.safetensors",
        "snap-000003.safetensors",
    ]
    weights = load_file(str(tmp_path / "snap-000003.safetensors"))
    torch.testing.assert_close(weights, _policy(3).state_dict())
    oldest = PolicyPool(tmp_path / "o", capacity=1)
    oldest.add_snapshot(_policy(1), 1, 1)
    assert oldest.add_snapshot(_policy(2), 2, 2) == ["snap-000001"]


def test_sampling_rules(tmp_path):
    pool = PolicyPool(tmp_path, capacity=5, bots=("random",))
    rng = np.random.default_rng(0)
    assert pool.sample("latest", 3, rng) == ["bot:random"] * 3  # no snapshot yet: the bot
    for epoch in (1, 2):
        pool.add_snapshot(_policy(epoch), epoch, epoch)
    assert set(pool.sample("latest", 5, rng)) == {"snap-000002"}
    pool.record("bot:random", 99, 0, 1)  # the learner crushes the bot
    pool.record("snap-000001", 10, 0, 10)
    pool.record("snap-000002", 2, 0, 18)  # and loses to the latest snapshot
    hard = pool.weights("pfsp")
    assert hard["snap-000002"] > hard["snap-000001"] > hard["bot:random"]
    assert sum(hard.values()) == pytest.approx(1.0)
    pool.pfsp_weighting = "variance"
    variance = pool.weights("pfsp")
    assert max(variance, key=variance.get) == "snap-000001"  # the even match
    mixed = pool.weights("mixed")
    assert mixed["snap-000002"] >= pool.latest_prob
    uniform = pool.sample("uniform", 3000, rng)
    counts = {n: uniform.count(n) for n in pool.names()}
    assert all(900 < c < 1100 for c in counts.values())
    with pytest.raises(APIUsageError, match="sampling"):
        pool.weights("elo")


def test_snapshot_actor_is_frozen_and_bots_are_bots(tmp_path):
    learner = _policy(0)
    pool = PolicyPool(tmp_path, capacity=3, bots=("one_ply",))
    pool.add_snapshot(learner, 1, 1)
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(1.0)  # the learner moves on; the snapshot must not
    actor = pool.actor("snap-000001", learner)
    assert actor is pool.actor("snap-000001", learner)  # cached
    assert all(not p.requires_grad for p in actor.policy.parameters())
    torch.testing.assert_close(actor.policy.state_dict(), _policy(0).state_dict())
    assert isinstance(pool.actor("bot:one_ply", learner), OnePlyBot)
    restored = PolicyPool(tmp_path, capacity=3)
    restored.load_dict(pool.to_dict())
    assert restored.names() == pool.names()


def test_pfsp_follows_recent_results_not_the_whole_history(tmp_path):
    pool = PolicyPool(tmp_path, capacity=3, bots=("random", "one_ply"), decay=0.5)
    pool.record("bot:random", 0, 0, 100)  # long ago the learner lost to random ...
    for _ in range(8):
        pool.record("bot:random", 30, 0, 0)  # ... it wins every game now
        pool.record("bot:one_ply", 15, 0, 15)
    assert pool.entries["bot:random"].wins == 240 and pool.entries["bot:random"].losses == 100
    assert pool.entries["bot:random"].win_rate > 0.95
    hard = pool.weights("pfsp")
    assert hard["bot:one_ply"] > 10 * hard["bot:random"]
