"""train_selfplay: pool, ratings and metrics through the trainer; restored on resume."""

from __future__ import annotations

import json

import pytest

from fugu.core.errors import APIUsageError
from fugu.loggers import read_jsonl
from fugu.selfplay.run import LEARNER, SelfPlayConfig, train_selfplay
from fugu.train.experiment import ExperimentConfig


def _config(**overrides):
    return ExperimentConfig.from_preset(
        "connect4-v1",
        {
            "env.num_envs": 12,
            "train.num_steps": 8,
            "train.total_timesteps": 12 * 8 * 6,  # at most 12 stored rows x 8 steps x 6 epochs
            "policy.hidden_size": 16,
            "ppo.update_epochs": 1,
            "env.kwargs": {},  # the two-player mode (the preset plays one_ply)
            "logging.tensorboard": False,
            "checkpoint.interval": 2,
            **overrides,
        },
    )


SP = SelfPlayConfig(snapshot_interval=2, pool_size=2, num_slots=2, mirror_fraction=0.25,
                    bots=("one_ply",))  # fmt: skip


def test_selfplay_run_logs_rates_snapshots_and_resumes(tmp_path):
    config = _config()
    summary, sp = train_selfplay(config, SP, run_dir=tmp_path, quiet=True, max_epochs=4)
    assert summary.epochs == 4 and not summary.interrupted
    # 3 mirror games (6 rows) + 9 slot games (one row each) are stored
    assert summary.timesteps == 4 * 8 * (6 + 9)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert all("selfplay/elo" in row for row in rows)
    assert sum(row["selfplay/games"] for row in rows) > 0
    # snapshots at epochs 1 (the first), 2 and 4; a pool of 2 keeps the newest two
    assert [e.name for e in sp.pool.snapshots()] == ["snap-000002", "snap-000004"]
    assert sorted(p.name for p in (tmp_path / "selfplay" / "pool").iterdir()) == [
        "snap-000002.safetensors",
        "snap-000004.safetensors",
    ]
    assert "snap-000001" not in sp.ratings and "snap-000004" in sp.ratings
    saved = sp.state_dict()
    table = json.loads((tmp_path / "selfplay" / "ratings.json").read_text())
    assert table[LEARNER]["rating"] == pytest.approx(sp.ratings[LEARNER].rating)

    summary2, sp2 = train_selfplay(config, SP, run_dir=tmp_path, quiet=True, max_epochs=1)
    assert summary2.resumed_from is not None and summary2.epochs == 5
    # the resumed run started from the state saved with the checkpoint (epoch 4) ...
    assert [h["epoch"] for h in sp2.history] == [1, 2, 3, 4, 5]
    assert sp2.history[:4] == saved["history"]
    # ... and went on rating the same players
    assert set(saved["ratings"]["players"]) <= set(sp2.ratings.players) | {"snap-000002"}


def test_selfplay_refuses_a_scripted_opponent_env(tmp_path):
    config = _config(**{"env.kwargs": {"opponent": "random"}})
    with pytest.raises(APIUsageError, match="two-player"):
        train_selfplay(config, SP, run_dir=tmp_path, quiet=True, max_epochs=1)
    with pytest.raises(APIUsageError, match="sampling"):
        SelfPlayConfig(sampling="best")


def test_league_main_exploiter_trains_against_the_main_agent_and_may_join_the_pool(tmp_path):
    sp_config = SelfPlayConfig(snapshot_interval=1, pool_size=4, num_slots=2, bots=("random",),
                               exploiter_interval=2, exploiter_epochs=2,
                               exploiter_threshold=0.0)  # fmt: skip
    _, sp = train_selfplay(_config(), sp_config, run_dir=tmp_path, quiet=True, max_epochs=2)
    names = sp.pool.names()
    assert "exploit-000002" in names and "exploit-000002" in sp.ratings  # threshold 0: joins
    assert sp.pool.latest is not None and sp.pool.latest.name == "snap-000002"
    assert 0.0 <= sp.history[-1]["selfplay/exploiter_score"] <= 1.0
    strict = SelfPlayConfig(num_slots=2, bots=("random",), exploiter_interval=1,
                            exploiter_epochs=2, exploiter_threshold=1.01)  # fmt: skip
    _, sp = train_selfplay(_config(), strict, run_dir=tmp_path / "b", quiet=True, max_epochs=1)
    assert not any(n.startswith("exploit-") for n in sp.pool.names())
    assert sp.history[-1]["selfplay/exploiter_added"] == 0.0


def test_without_bots_the_initial_weights_are_the_first_opponent(tmp_path):
    sp_config = SelfPlayConfig(num_slots=2, bots=(), snapshot_interval=10)
    _, sp = train_selfplay(_config(), sp_config, run_dir=tmp_path, quiet=True, max_epochs=3)
    assert sp.pool.names() == ["snap-000000"]
    assert sum(h["selfplay/games"] for h in sp.history) > 0
    with pytest.raises(APIUsageError, match="double_buffer"):
        train_selfplay(_config(**{"train.double_buffer": True}), sp_config, run_dir=tmp_path)
