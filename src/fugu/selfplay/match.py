"""Head-to-head matches between two actors, Wilson intervals, and round robins.

:func:`play_match` plays ``games`` games of a two-player self-play env (``connect4-v1``)
between actors ``a`` and ``b``, many games at once on one vec env: ``a`` plays one row of every
game, ``b`` the other, each actor batched over its rows in the same env step. Seats are
balanced: ``a`` opens half of the games (game ``g`` of a run of games on env copy ``c`` is
opened by ``a`` when ``c + g`` is even) and the result is split by seat. :func:`round_robin`
plays every pair of a set of actors and fits Elo ratings to all the results
(:func:`~fugu.selfplay.ratings.fit_elo`).

Example:
    >>> from fugu.selfplay.bots import OnePlyBot, RandomBot
    >>> result = play_match(OnePlyBot(seed=1), RandomBot(seed=2), games=40, num_envs=20)
    >>> result.games, result.first.games, result.second.games
    (40, 20, 20)
    >>> result.score > 0.8
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fugu.core.errors import APIUsageError
from fugu.selfplay.ratings import MatchRecord, fit_elo

__all__ = [
    "MatchResult",
    "Record",
    "load_actor",
    "play_match",
    "pool_actors",
    "round_robin",
    "wilson_interval",
]


def wilson_interval(successes: float, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% for ``z = 1.96``).

    Example:
        >>> low, high = wilson_interval(396, 400)
        >>> round(low, 3), round(high, 3)
        (0.975, 0.996)
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Record:
    """Wins, draws and losses of one side."""

    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def games(self) -> int:
        """Games played."""
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        """``(wins + draws / 2) / games`` (NaN without games)."""
        return (self.wins + 0.5 * self.draws) / self.games if self.games else float("nan")

    def rate(self, outcome: str) -> tuple[float, float, float]:
        """The rate of ``wins``, ``draws`` or ``losses`` and its 95% Wilson interval."""
        k = getattr(self, outcome)
        n = self.games
        return (k / n if n else float("nan"), *wilson_interval(k, n))


@dataclass
class MatchResult:
    """The outcome of :func:`play_match`, from ``a``'s point of view.

    Attributes:
        first: ``a``'s record in the games it opened.
        second: ``a``'s record in the games ``b`` opened.
    """

    first: Record = field(default_factory=Record)
    second: Record = field(default_factory=Record)

    @property
    def total(self) -> Record:
        """Both seats together."""
        return Record(
            self.first.wins + self.second.wins,
            self.first.draws + self.second.draws,
            self.first.losses + self.second.losses,
        )

    @property
    def games(self) -> int:
        """Games played."""
        return self.total.games

    @property
    def score(self) -> float:
        """``a``'s score (draws half)."""
        return self.total.score

    def table(self, a: str = "A", b: str = "B") -> str:
        """A win/draw/loss table by seat with 95% Wilson intervals (plain text)."""
        lines = [
            f"{a} vs {b}: {self.games} games, score {self.score:.3f}",
            f"{'seat':<14}{'games':>6}  {'win':<22}{'draw':<22}{'loss':<22}",
        ]
        for label, record in (("a first", self.first), ("a second", self.second),
                              ("both", self.total)):  # fmt: skip
            cells = []
            for outcome in ("wins", "draws", "losses"):
                rate, low, high = record.rate(outcome)
                cells.append(f"{rate:6.1%} [{low:.1%}, {high:.1%}]".ljust(22))
            lines.append(f"{label.replace('a ', a + ' '):<14}{record.games:>6}  " + "".join(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts, rates and intervals."""
        out: dict[str, Any] = {"games": self.games, "score": self.score}
        for label, record in (("first", self.first), ("second", self.second),
                              ("total", self.total)):  # fmt: skip
            out[label] = {
                o: {"count": getattr(record, o), "rate": r, "low": lo, "high": hi}
                for o in ("wins", "draws", "losses")
                for r, lo, hi in [record.rate(o)]
            }
        return out


def play_match(
    a: Any,
    b: Any,
    games: int = 400,
    *,
    env_id: str = "connect4-v1",
    num_envs: int = 100,
    seed: int = 0,
    deterministic: tuple[bool, bool] = (False, False),
    env_kwargs: Mapping[str, Any] | None = None,
    max_steps: int = 1_000_000,
) -> MatchResult:
    """Play ``games`` games between actors ``a`` and ``b`` (both seats equally).

    Args:
        a: An :class:`~fugu.algos.base.Actor` (an algorithm, a snapshot, a bot).
        b: Its opponent.
        games: Games to play (rounded up to an even number per env copy).
        env_id: A two-player env with two rows per game whose first mover alternates.
        num_envs: Games played at once.
        seed: The env's reset seed.
        deterministic: Whether ``a`` and ``b`` take their policy's mode (else they sample).
        env_kwargs: More env arguments.
        max_steps: Give up after this many env steps (an error).
    """
    from fugu.core.registry import make

    if games < 1:
        raise APIUsageError(f"games must be >= 1, got {games}")
    per_copy = max(2, 2 * math.ceil(games / (2 * num_envs)))
    num_envs = min(num_envs, math.ceil(games / per_copy) if games >= per_copy else 1)
    env = make(env_id, num_envs=num_envs, **dict(env_kwargs or {}))
    try:
        if int(getattr(env, "agents_per_env", 0)) != 2 or env.num_agents != 2 * num_envs:
            raise APIUsageError(f"{env_id} is not a two-rows-per-game self-play env")
        copies = np.arange(num_envs)
        rows_a = 2 * copies + copies % 2  # a opens the first game of even copies
        rows_b = 2 * copies + 1 - copies % 2
        played = np.zeros(num_envs, dtype=np.int64)
        result = MatchResult()
        obs, _ = env.reset(seed=seed)
        extras = getattr(env, "extras", {})
        sides = [(a, rows_a, deterministic[0]), (b, rows_b, deterministic[1])]
        states = [actor.initial_state(len(rows)) for actor, rows, _ in sides]
        starts = torch.ones(num_envs, dtype=torch.bool)
        actions = np.zeros(env.num_agents, dtype=env.actions.dtype)
        for _ in range(max_steps):
            if (played >= per_copy).all():
                break
            obs_t = torch.from_numpy(obs)
            for i, (actor, rows, greedy) in enumerate(sides):
                index = torch.from_numpy(rows)
                state = actor.reset_state(states[i], starts)
                fields = {n: torch.from_numpy(np.asarray(v))[index] for n, v in extras.items()}
                out = actor.act(obs_t[index], state, fields, greedy)
                states[i] = out.state
                actions[rows] = out.actions.cpu().numpy()
            obs, rewards, terminals, truncations, _ = env.step(actions)
            done = terminals[rows_a] | truncations[rows_a]
            starts = torch.from_numpy(done.copy())
            for c in np.flatnonzero(done):
                if played[c] >= per_copy:
                    continue
                opened = (c + played[c]) % 2 == 0
                record = result.first if opened else result.second
                r = rewards[rows_a[c]]
                if r > 0:
                    record.wins += 1
                elif r < 0:
                    record.losses += 1
                else:
                    record.draws += 1
                played[c] += 1
        else:
            raise APIUsageError(f"the match did not finish within {max_steps} steps")
    finally:
        env.close()
    return result


def round_robin(
    actors: Mapping[str, Any],
    games: int = 100,
    *,
    anchor: str | None = None,
    **kwargs: Any,
) -> tuple[dict[str, float], list[MatchRecord]]:
    """Every pair of ``actors`` plays ``games`` games; Elo ratings fitted to all results.

    Returns:
        ``(ratings, records)``: the fitted ratings (``anchor`` at 0, else mean 0) and the
        ``(a, b, wins, draws, losses)`` records.
    """
    names = list(actors)
    records: list[MatchRecord] = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            res = play_match(actors[first], actors[second], games, **kwargs).total
            records.append((first, second, res.wins, res.draws, res.losses))
    return fit_elo(records, anchor=anchor), records


def load_actor(spec: str, env_id: str = "connect4-v1", seed: int = 0) -> Any:
    """An actor from a spec: a bot (``random``, ``one_ply``, ``alphabetaN``, optionally as
    ``bot:NAME``), or a checkpoint directory or run dir (its latest valid checkpoint)."""
    from pathlib import Path

    from fugu.checkpoint import find_latest_valid, verify_checkpoint
    from fugu.core.registry import make
    from fugu.selfplay.bots import make_bot
    from fugu.train.build import load_algorithm

    path = Path(spec)
    if not path.exists():
        return make_bot(spec.removeprefix("bot:"), seed)
    if not (path / "manifest.json").is_file():
        found = find_latest_valid(path)
        if found is None:
            raise APIUsageError(f"no valid checkpoint at {path}")
        path = found
    reason = verify_checkpoint(path)
    if reason is not None:
        raise APIUsageError(f"checkpoint {path} is not usable: {reason}")
    env = make(env_id, num_envs=1)
    try:
        algo, _ = load_algorithm(path, env.single_observation_space, env.single_action_space, "cpu")
    finally:
        env.close()
    return algo


def pool_actors(run_dir: str, env_id: str = "connect4-v1", every: int = 1) -> dict[str, Any]:
    """The snapshots of a self-play run's pool (every ``every``-th, the newest always), as
    frozen actors keyed by name, oldest first."""
    import json
    from pathlib import Path

    from fugu.selfplay.pool import PolicyPool

    directory = Path(run_dir) / "selfplay"
    states = sorted(directory.glob("state-*.json"))
    if not states:
        raise APIUsageError(f"{run_dir} has no self-play state (selfplay/state-*.json)")
    learner = load_actor(str(run_dir), env_id)
    pool = PolicyPool(directory / "pool", capacity=10**6)
    pool.load_dict(json.loads(states[-1].read_text())["pool"])
    snaps = pool.snapshots()
    chosen = [s for i, s in enumerate(snaps) if i % max(every, 1) == 0 or i == len(snaps) - 1]
    return {s.name: pool.actor(s.name, learner.policy) for s in chosen}
