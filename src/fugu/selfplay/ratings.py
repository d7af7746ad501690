"""Ratings from match results: online Elo (or Glicko-2) and a maximum-likelihood Elo fit.

A :class:`RatingTable` keeps one :class:`Rating` per player name and updates it after every
batch of games between two players (:meth:`RatingTable.record`), with the Elo rule (``K``
configurable) or Glicko-2 (a rating deviation that shrinks as games accumulate). Scores are
from the first player's point of view: 1 a win, 0.5 a draw, 0 a loss. The table serialises to
plain JSON (:meth:`RatingTable.to_dict`), so it is saved with the run and restored on resume.

:func:`fit_elo` rates a fixed set of results jointly (a Bradley-Terry maximum-likelihood fit
on the Elo scale, the order of the games does not matter): use it for a round robin of frozen
snapshots, where the online rule would depend on the order of the matches.

Example:
    >>> table = RatingTable(k=32)
    >>> table.record("a", "b", wins=3, draws=0, losses=1)
    >>> round(table["a"].rating - table["b"].rating, 1) > 0
    True
    >>> fitted = fit_elo([("a", "b", 3, 0, 1)], anchor="b", prior_games=0)
    >>> round(fitted["a"])  # 3 wins in 4: 400 log10(3) above b
    191
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = [
    "ELO_SCALE",
    "MatchRecord",
    "Rating",
    "RatingTable",
    "expected_score",
    "fit_elo",
]

ELO_SCALE = 400.0
"""Elo points per factor of 10 in the odds of winning."""

_GLICKO_SCALE = ELO_SCALE / math.log(10)  # 173.7178: Glicko-2's internal scale

MatchRecord = tuple[str, str, int, int, int]
"""``(player, opponent, wins, draws, losses)`` from ``player``'s point of view."""


def expected_score(rating: float, opponent: float) -> float:
    """Elo's expected score of ``rating`` against ``opponent`` (win = 1, draw = 0.5).

    Example:
        >>> expected_score(1600.0, 1200.0)  # 400 points: odds of 10 to 1
        0.9090909090909091
    """
    return 1.0 / (1.0 + 10.0 ** ((opponent - rating) / ELO_SCALE))


@dataclass
class Rating:
    """One player's rating and record.

    Attributes:
        rating: Elo-scale rating.
        deviation: Glicko-2 rating deviation on the Elo scale (unused by plain Elo).
        volatility: Glicko-2 volatility.
        games: Games played; ``wins``, ``draws``, ``losses`` split them.
    """

    rating: float = 1000.0
    deviation: float = 350.0
    volatility: float = 0.06
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0


class RatingTable:
    """Ratings of named players, updated from batches of games.

    Args:
        k: Elo's K factor: rating points moved per game by a surprise of 1 (per game, so a
            batch of ``n`` games moves at most ``k * n``, scaled by the batch's surprise).
        system: ``"elo"`` or ``"glicko2"`` (one rating period per :meth:`record` call).
        initial: Rating of a new player.
        tau: Glicko-2's volatility constraint.
        frozen: Names whose rating never changes (anchors, e.g. a scripted bot).
    """

    def __init__(
        self,
        k: float = 16.0,
        system: Literal["elo", "glicko2"] = "elo",
        initial: float = 1000.0,
        tau: float = 0.5,
        frozen: Iterable[str] = (),
    ) -> None:
        if system not in ("elo", "glicko2"):
            raise APIUsageError(f"rating system must be 'elo' or 'glicko2', got {system!r}")
        if k <= 0:
            raise APIUsageError(f"the Elo K factor must be > 0, got {k}")
        self.k = float(k)
        self.system = system
        self.initial = float(initial)
        self.tau = float(tau)
        self.frozen = set(frozen)
        self.players: dict[str, Rating] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.players

    def __getitem__(self, name: str) -> Rating:
        """The rating of ``name`` (a new player gets the initial rating)."""
        if name not in self.players:
            self.players[name] = Rating(rating=self.initial)
        return self.players[name]

    def add(self, name: str, rating: float | None = None) -> Rating:
        """Add ``name`` (with ``rating``, default the initial one) unless it is there."""
        if name not in self.players:
            self.players[name] = Rating(rating=self.initial if rating is None else rating)
        return self.players[name]

    def remove(self, name: str) -> None:
        """Forget ``name`` (an evicted snapshot)."""
        self.players.pop(name, None)

    def record(self, player: str, opponent: str, wins: int, draws: int, losses: int) -> None:
        """Update both players after ``wins + draws + losses`` games between them."""
        n = wins + draws + losses
        if n == 0:
            return
        a, b = self[player], self[opponent]
        score = (wins + 0.5 * draws) / n
        if self.system == "elo":
            delta = self.k * n * (score - expected_score(a.rating, b.rating))
            new_a, new_b = a.rating + delta, b.rating - delta
            if player not in self.frozen:
                a.rating = new_a
            if opponent not in self.frozen:
                b.rating = new_b
        else:
            ra = (a.rating, a.deviation, a.volatility)
            rb = (b.rating, b.deviation, b.volatility)
            if player not in self.frozen:
                a.rating, a.deviation, a.volatility = _glicko2(ra, rb, score, n, self.tau)
            if opponent not in self.frozen:
                b.rating, b.deviation, b.volatility = _glicko2(rb, ra, 1.0 - score, n, self.tau)
        for rating, w, lost in ((a, wins, losses), (b, losses, wins)):
            rating.games += n
            rating.wins += w
            rating.draws += draws
            rating.losses += lost

    def ranking(self) -> list[tuple[str, Rating]]:
        """Players by rating, best first."""
        return sorted(self.players.items(), key=lambda item: -item[1].rating)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (settings and every player)."""
        return {
            "k": self.k,
            "system": self.system,
            "initial": self.initial,
            "tau": self.tau,
            "frozen": sorted(self.frozen),
            "players": {name: asdict(r) for name, r in self.players.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatingTable:
        """Restore :meth:`to_dict`."""
        table = cls(data["k"], data["system"], data["initial"], data["tau"], data["frozen"])
        table.players = {name: Rating(**r) for name, r in data["players"].items()}
        return table


def _glicko2(
    player: tuple[float, float, float],
    opponent: tuple[float, float, float],
    score: float,
    games: int,
    tau: float,
) -> tuple[float, float, float]:
    """One Glicko-2 rating period of ``games`` games scoring ``score`` on average."""
    mu, phi, sigma = (player[0] - 1500.0) / _GLICKO_SCALE, player[1] / _GLICKO_SCALE, player[2]
    mu_j, phi_j = (opponent[0] - 1500.0) / _GLICKO_SCALE, opponent[1] / _GLICKO_SCALE
    g = 1.0 / math.sqrt(1.0 + 3.0 * phi_j**2 / math.pi**2)
    e = 1.0 / (1.0 + math.exp(-g * (mu - mu_j)))
    v = 1.0 / (games * g**2 * e * (1.0 - e))
    delta = v * games * g * (score - e)
    # the volatility: the root of f (Illinois method), as in Glickman's paper
    a = math.log(sigma**2)

    def f(x: float) -> float:
        ex = math.exp(x)
        return ex * (delta**2 - phi**2 - v - ex) / (2.0 * (phi**2 + v + ex) ** 2) - (x - a) / tau**2

    lo = a
    if delta**2 > phi**2 + v:
        hi = math.log(delta**2 - phi**2 - v)
    else:
        step = 1
        while f(a - step * tau) < 0:
            step += 1
        hi = a - step * tau
    f_lo, f_hi = f(lo), f(hi)
    for _ in range(100):
        if abs(hi - lo) <= 1e-6:
            break
        mid = lo + (lo - hi) * f_lo / (f_hi - f_lo)
        f_mid = f(mid)
        if f_mid * f_hi <= 0:
            lo, f_lo = hi, f_hi
        else:
            f_lo /= 2.0
        hi, f_hi = mid, f_mid
    new_sigma = math.exp(lo / 2.0)
    phi_star = math.sqrt(phi**2 + new_sigma**2)
    new_phi = 1.0 / math.sqrt(1.0 / phi_star**2 + 1.0 / v)
    new_mu = mu + new_phi**2 * games * g * (score - e)
    return 1500.0 + _GLICKO_SCALE * new_mu, _GLICKO_SCALE * new_phi, new_sigma


def fit_elo(
    results: Iterable[MatchRecord],
    anchor: str | None = None,
    anchor_rating: float = 0.0,
    prior_games: float = 0.5,
    iterations: int = 2000,
) -> dict[str, float]:
    """Elo ratings that best explain ``results`` (Bradley-Terry maximum likelihood).

    A draw counts as half a win for each side. A weak prior (``prior_games`` drawn games of
    every player against a virtual player at the mean) keeps the ratings of players who won
    or lost every game finite.

    Args:
        results: ``(player, opponent, wins, draws, losses)`` records.
        anchor: The player rated ``anchor_rating`` (default: the ratings average to it).
        anchor_rating: Rating of the anchor (or the mean).
        prior_games: Strength of the prior, in games.
        iterations: Minorise-maximise iterations (Hunter's algorithm).

    Returns:
        Rating of every player named in ``results``.
    """
    records = list(results)
    names = sorted({r[0] for r in records} | {r[1] for r in records})
    if anchor is not None and anchor not in names:
        raise APIUsageError(f"anchor {anchor!r} played no game (players: {names})")
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    wins = np.zeros(n)  # scores, draws as halves
    games = np.zeros((n, n))
    for player, opponent, w, d, lost in records:
        i, j = index[player], index[opponent]
        wins[i] += w + 0.5 * d
        wins[j] += lost + 0.5 * d
        games[i, j] += w + d + lost
        games[j, i] += w + d + lost
    strength = np.ones(n)
    for _ in range(iterations):
        # the prior: prior_games games against a virtual player of strength 1
        denom = (games / (strength[:, None] + strength[None, :])).sum(1)
        denom += prior_games / (strength + 1.0)
        new = (wins + 0.5 * prior_games) / denom
        new /= np.exp(np.mean(np.log(new)))
        if np.allclose(new, strength, rtol=1e-10, atol=0):
            strength = new
            break
        strength = new
    ratings = ELO_SCALE * np.log10(strength)
    shift = anchor_rating - (ratings[index[anchor]] if anchor is not None else ratings.mean())
    return {name: float(ratings[index[name]] + shift) for name in names}
