"""Head-to-head matches: exact game counts, balanced seats, Wilson intervals, round robins."""

from __future__ import annotations

import pytest

from fugu.selfplay.bots import AlphaBetaBot, OnePlyBot, RandomBot
from fugu.selfplay.match import load_actor, play_match, round_robin, wilson_interval


def test_wilson_interval_covers_the_rate_and_shrinks_with_games():
    low, high = wilson_interval(50, 100)
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)  # the textbook values
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(500, 1000)[1] - wilson_interval(500, 1000)[0] < high - low


def test_match_plays_exactly_balanced_seats_and_a_stronger_bot_wins():
    result = play_match(OnePlyBot(seed=1), RandomBot(seed=2), games=64, num_envs=16)
    assert result.games == 64 and result.first.games == result.second.games == 32
    assert result.score > 0.85
    mirrored = play_match(RandomBot(seed=2), OnePlyBot(seed=1), games=64, num_envs=16)
    assert mirrored.score < 0.15
    table = result.table("one_ply", "random")
    assert "one_ply first" in table and "one_ply second" in table and "[" in table
    assert result.to_dict()["total"]["wins"]["count"] == result.total.wins


def test_round_robin_orders_the_bots_by_strength():
    actors = {"random": RandomBot(1), "one_ply": OnePlyBot(2), "ab2": AlphaBetaBot(2, seed=3)}
    ratings, records = round_robin(actors, games=32, num_envs=16, anchor="random")
    assert len(records) == 3 and ratings["random"] == 0.0
    assert ratings["random"] < ratings["one_ply"] < ratings["ab2"]
    assert isinstance(load_actor("bot:alphabeta3"), AlphaBetaBot)
