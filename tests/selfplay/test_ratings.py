"""Elo, Glicko-2 and the maximum-likelihood fit."""

from __future__ import annotations

import json
import math

import pytest

from fugu.core.errors import APIUsageError
from fugu.selfplay.ratings import RatingTable, expected_score, fit_elo


def test_elo_moves_by_k_times_the_surprise_and_conserves_points():
    table = RatingTable(k=10)
    table.record("a", "b", wins=1, draws=0, losses=0)
    assert table["a"].rating == pytest.approx(1005.0)  # expected 0.5, scored 1: +K/2
    assert table["a"].rating + table["b"].rating == pytest.approx(2000.0)
    table.record("a", "b", wins=0, draws=2, losses=0)
    assert table["a"].rating < 1005.0  # a draw against a weaker player costs points
    assert (table["a"].games, table["a"].wins, table["b"].losses, table["b"].draws) == (3, 1, 1, 2)


def test_frozen_anchor_keeps_its_rating():
    table = RatingTable(k=10, frozen=["bot"])
    table.record("a", "bot", 5, 0, 0)
    assert table["bot"].rating == 1000.0 and table["a"].rating > 1000.0


def test_glicko2_moves_the_uncertain_rating_more_and_shrinks_deviation():
    table = RatingTable(system="glicko2", initial=1500.0)
    table.add("me").deviation = 200.0
    table.add("opp", 1400.0).deviation = 30.0
    table.record("me", "opp", 1, 0, 0)
    assert table["me"].rating > 1500.0 and table["me"].deviation < 200.0
    assert table["opp"].rating < 1400.0
    assert 1400.0 - table["opp"].rating < table["me"].rating - 1500.0  # the surer rating moves less


def test_table_round_trips_through_json():
    table = RatingTable(k=8, system="glicko2", frozen=["x"])
    table.record("a", "x", 2, 1, 0)
    again = RatingTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert again.to_dict() == table.to_dict()
    assert [name for name, _ in again.ranking()] == ["a", "x"]


def test_fit_elo_recovers_ratings_of_a_known_ladder():
    # players 200 Elo apart: expected scores give exact fractional "results" of 1000 games
    truth = {"p0": 0.0, "p1": 200.0, "p2": 400.0, "p3": 600.0}
    records = []
    names = list(truth)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            e = expected_score(truth[a], truth[b])
            wins = round(1000 * e)
            records.append((a, b, wins, 0, 1000 - wins))
    fitted = fit_elo(records, anchor="p0", prior_games=0.0)
    for name in names:
        assert fitted[name] == pytest.approx(truth[name], abs=2.0)
    # a player who won everything stays finite with the prior
    lopsided = fit_elo([("a", "b", 10, 0, 0)], anchor="b")
    assert math.isfinite(lopsided["a"]) and lopsided["a"] > 300


def test_errors_are_clear():
    with pytest.raises(APIUsageError, match="elo"):
        RatingTable(system="trueskill")  # type: ignore[arg-type]
    with pytest.raises(APIUsageError, match="anchor"):
        fit_elo([("a", "b", 1, 0, 0)], anchor="c")
