"""Training by self-play: a pool, matchmaking and ratings around :func:`fugu.train.run.train`.

:func:`train_selfplay` trains any registered algorithm on a two-player env (``connect4-v1``
in self-play mode) with a :class:`SelfPlay` callback:

1. the env's games are split by a :class:`~fugu.selfplay.matchmaking.Matchmaker` into mirror
   games (the learner on both rows) and opponent slots (the learner on one row per game,
   seats alternating); the opponents act on their rows through the trainer's
   :class:`~fugu.train.policy_map.RowPolicyMap`, and only the learner's rows are stored, so
   gradients reach the learner only;
2. after each epoch the learner's results in every slot update the
   :class:`~fugu.selfplay.ratings.RatingTable` (``learner`` against the opponent) and the
   pool's win rates; every ``snapshot_interval`` epochs a frozen snapshot of the learner
   joins the :class:`~fugu.selfplay.pool.PolicyPool` (rated as the learner is then); then every
   slot samples its next opponent (``sampling``: latest, uniform, PFSP or mixed);
3. ``selfplay/...`` metrics (the learner's Elo, its score, the pool's size, its score against
   each bot) go to every sink with the epoch's (TensorBoard included), and the state (pool,
   ratings, Elo history, generator) is written to ``run_dir/selfplay/`` every epoch, keyed by
   step, so that a resumed run restores the state of the checkpoint it resumes.

Example:
    >>> config = SelfPlayConfig(num_slots=4, bots=("one_ply",))
    >>> config.sampling, config.num_mirror_games(16)
    ('mixed', 8)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from fugu.core.errors import APIUsageError
from fugu.selfplay.league import LeagueSettings, train_exploiter
from fugu.selfplay.matchmaking import Matchmaker
from fugu.selfplay.pool import EVICTIONS, SAMPLINGS, PolicyPool
from fugu.selfplay.ratings import RatingTable
from fugu.train.experiment import ExperimentConfig
from fugu.train.session import EpochContext, TrainSummary

__all__ = ["LEARNER", "SelfPlay", "SelfPlayConfig", "train_selfplay"]

LEARNER = "learner"
"""The learner's name in the rating table."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelfPlayConfig:
    """How the learner meets its opponents (``--selfplay.KEY VALUE`` on the command line)."""

    snapshot_interval: int = 5
    """Epochs between snapshots of the learner into the pool."""
    pool_size: int = 32
    """Snapshots kept in the pool (bots do not count)."""
    eviction: str = "oldest"
    """Which snapshot a full pool drops: ``oldest`` or ``easiest`` (the learner's best score)."""
    sampling: str = "mixed"
    """Opponent sampling: ``latest``, ``uniform``, ``pfsp`` or ``mixed`` (latest or PFSP)."""
    pfsp_weighting: str = "hard"
    """PFSP weighting of win rate ``p``: ``hard`` ``(1-p)^power`` or ``variance`` ``p(1-p)``."""
    pfsp_power: float = 2.0
    """Exponent of ``hard`` PFSP weighting."""
    latest_prob: float = 0.5
    """``mixed`` sampling: probability of the latest snapshot (else PFSP)."""
    pfsp_decay: float = 0.8
    """PFSP win rates are of recent games: an entry's counts decay by this factor at each
    new batch of results against it."""
    bots: tuple[str, ...] = ("random", "one_ply")
    """Scripted bots always in the pool: ``random``, ``one_ply``, ``alphabetaN``."""
    num_slots: int = 8
    """Opponent slots (runs of games), each with its own sampled opponent every epoch."""
    mirror_fraction: float = 0.5
    """Fraction of the games where the learner plays both rows (pure self-play)."""
    rating_system: str = "elo"
    """``elo`` or ``glicko2``."""
    elo_k: float = 4.0
    """Elo K factor, per game (an epoch plays hundreds of games: keep it small)."""
    seed: int = 0
    """Seed of opponent sampling and of the opponents' own action sampling."""
    exploiter_interval: int = 0
    """League: epochs between main exploiters (0: none; see :mod:`fugu.selfplay.league`)."""
    exploiter_epochs: int = 10
    """League: epochs a main exploiter trains against the frozen main agent."""
    exploiter_threshold: float = 0.6
    """League: score against the main agent an exploiter needs to join the pool."""

    @property
    def league(self) -> LeagueSettings:
        """The league's settings."""
        return LeagueSettings(
            self.exploiter_interval, self.exploiter_epochs, self.exploiter_threshold
        )

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise APIUsageError(
                f"selfplay.sampling must be one of {SAMPLINGS}, got {self.sampling!r}"
            )
        if self.eviction not in EVICTIONS:
            raise APIUsageError(
                f"selfplay.eviction must be one of {EVICTIONS}, got {self.eviction!r}"
            )
        if not 0.0 <= self.mirror_fraction < 1.0:
            raise APIUsageError("selfplay.mirror_fraction must be in [0, 1)")
        if self.snapshot_interval < 1 or self.num_slots < 1:
            raise APIUsageError("selfplay.snapshot_interval and selfplay.num_slots must be >= 1")

    def num_mirror_games(self, num_games: int) -> int:
        """Mirror games among ``num_games`` (leaving at least ``num_slots`` for opponents)."""
        return min(round(self.mirror_fraction * num_games), num_games - self.num_slots)


class SelfPlay:
    """The self-play callback: tallies results, rates, snapshots, resamples opponents.

    Args:
        config: The self-play settings.
        num_games: Games of the env (two rows each).
        template: A policy of the learner's architecture (snapshots are loaded into copies);
            without bots, its weights (the learner's initial ones) are the first opponent.
        directory: Where the pool's weights and the state files go (``run_dir/selfplay``).
        experiment: The learner's experiment config (main exploiters are trained with it;
            needed when ``config.exploiter_interval > 0``).
    """

    def __init__(
        self,
        config: SelfPlayConfig,
        num_games: int,
        template: nn.Module,
        directory: str | Path,
        experiment: ExperimentConfig | None = None,
    ) -> None:
        if config.league.enabled and experiment is None:
            raise APIUsageError("main exploiters (selfplay.exploiter_interval) need `experiment`")
        self.config = config
        self.experiment = experiment
        self.directory = Path(directory)
        self.template = template
        self.matchmaker = Matchmaker(
            num_games, config.num_slots, config.num_mirror_games(num_games)
        )
        self.pool = PolicyPool(
            self.directory / "pool",
            config.pool_size,
            config.eviction,
            config.bots,
            config.pfsp_weighting,
            config.pfsp_power,
            config.latest_prob,
            config.seed,
            config.pfsp_decay,
        )
        self.ratings = RatingTable(config.elo_k, config.rating_system)  # type: ignore[arg-type]
        self.ratings.add(LEARNER)
        for name in self.pool.names():
            self.ratings.add(name)
        self.rng = np.random.default_rng(config.seed)
        self.history: list[dict[str, float]] = []
        if not self.pool.names():  # no bots: the learner's initial weights are the first opponent
            self.pool.add_snapshot(template, 0, 0)
            self.ratings.add("snap-000000")
        self.slot_names: list[str] = [self.pool.names()[0]] * config.num_slots
        self.mux: Any = None

    # -- the policy map ---------------------------------------------------------------------
    def opponents(self) -> list[Any]:
        """The current actor of every slot."""
        return [self.pool.actor(name, self.template) for name in self.slot_names]

    def policy_map(self) -> Any:
        """The trainer's :class:`~fugu.train.policy_map.RowPolicyMap`: the learner's rows and
        one :class:`~fugu.selfplay.matchmaking.OpponentMux` on the opponents' rows (each
        opponent batched over the rows of the slots it plays)."""
        if self.mux is None:
            self.mux = self.matchmaker.mux(self.opponents())
        return self.matchmaker.policy_map(self.mux)

    # -- after each epoch -------------------------------------------------------------------
    def __call__(self, context: EpochContext) -> dict[str, float]:
        """Tally the epoch's games, rate, snapshot, resample, save; ``selfplay/`` metrics."""
        trainer = context.trainer
        tensors = trainer.collector.storage.tensors
        dones = tensors["terminals"] | tensors["truncations"]
        results = self.matchmaker.tally(tensors["rewards"], dones)
        per_opponent: dict[str, list[int]] = {}
        for name, (w, d, lost) in zip(self.slot_names, results):
            totals = per_opponent.setdefault(name, [0, 0, 0])
            totals[0] += w
            totals[1] += d
            totals[2] += lost
        for name, (w, d, lost) in per_opponent.items():
            self.ratings.record(LEARNER, name, w, d, lost)
            self.pool.record(name, w, d, lost)
        if context.epoch % self.config.snapshot_interval == 0 or self.pool.latest is None:
            self._snapshot(trainer.algo, context.epoch, context.global_step)
        league = self.config.league
        metrics_league: dict[str, float] = {}
        if league.enabled and context.epoch % league.interval == 0:
            metrics_league = self._exploit(trainer.algo, context.epoch, context.global_step)
        self.slot_names = self.pool.sample(self.config.sampling, self.config.num_slots, self.rng)
        if self.mux is not None:
            self.mux.assign(self.opponents())
        games = sum(sum(t) for t in per_opponent.values())
        score = sum(t[0] + 0.5 * t[1] for t in per_opponent.values()) / max(games, 1)
        metrics = {
            "selfplay/elo": self.ratings[LEARNER].rating,
            "selfplay/score": score,
            "selfplay/games": float(games),
            "selfplay/pool_size": float(len(self.pool.snapshots())),
        }
        metrics.update(metrics_league)
        for name, (w, d, lost) in per_opponent.items():
            if name.startswith("bot:") and w + d + lost:
                metrics[f"selfplay/score_vs_{name[4:]}"] = (w + 0.5 * d) / (w + d + lost)
        self.history.append({"epoch": float(context.epoch), "step": float(context.global_step),
                             **metrics})  # fmt: skip
        self.save(context.global_step)
        return metrics

    def _snapshot(self, algo: Any, epoch: int, global_step: int) -> None:
        policy = getattr(algo, "policy", None)
        if not isinstance(policy, nn.Module):
            raise APIUsageError(
                f"self-play snapshots the learner's `policy` module; {type(algo).__name__} has none"
            )
        evicted = self.pool.add_snapshot(policy, epoch, global_step)
        latest = self.pool.latest
        assert latest is not None
        self.ratings.add(latest.name, self.ratings[LEARNER].rating)
        for name in evicted:
            self.ratings.remove(name)

    def _exploit(self, algo: Any, epoch: int, global_step: int) -> dict[str, float]:
        """Train a main exploiter against the latest snapshot; pool it if it is good enough."""
        assert self.experiment is not None
        latest = self.pool.latest
        assert latest is not None
        main = self.pool.actor(latest.name, self.template)
        policy, score = train_exploiter(
            self.experiment,
            algo.policy,
            main,
            self.config.league.epochs,
            seed=self.config.seed + epoch,
        )
        accepted = score >= self.config.league.threshold
        if accepted:
            for name in self.pool.add_snapshot(policy, epoch, global_step, prefix="exploit"):
                self.ratings.remove(name)
            self.ratings.add(f"exploit-{epoch:06d}", self.ratings[LEARNER].rating)
        return {"selfplay/exploiter_score": score, "selfplay/exploiter_added": float(accepted)}

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state: pool entries, ratings, slots, Elo history, the generator."""
        return {
            "pool": self.pool.to_dict(),
            "ratings": self.ratings.to_dict(),
            "slot_names": list(self.slot_names),
            "history": self.history,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (snapshots whose weights are gone are dropped)."""
        self.pool.load_dict(state["pool"])
        for entry in list(self.pool.snapshots()):
            if entry.file is None or not (self.pool.directory / entry.file).is_file():
                _log.warning("self-play: snapshot %s has no weights any more; dropped", entry.name)
                del self.pool.entries[entry.name]
        self.ratings = RatingTable.from_dict(state["ratings"])
        names = set(self.pool.names())
        fallback = self.pool.names()[0]
        self.slot_names = [n if n in names else fallback for n in state["slot_names"]]
        self.history = list(state["history"])
        self.rng.bit_generator.state = state["rng"]

    def save(self, global_step: int) -> Path:
        """Write ``state-<step>.json`` (and ``ratings.json``, the latest table, for people);
        drop state files older than the oldest checkpoint of the run."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"state-{global_step:012d}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state_dict()))
        tmp.replace(path)
        (self.directory / "ratings.json").write_text(
            json.dumps(
                {name: r.__dict__ for name, r in self.ratings.ranking()}, indent=1
            ) + "\n"
        )  # fmt: skip
        checkpoints = self.directory.parent / "checkpoints"
        steps = [
            int(p.name.split("-")[-1])
            for p in checkpoints.glob("step-*")
            if p.name.split("-")[-1].isdigit()
        ] if checkpoints.is_dir() else []  # fmt: skip
        if steps:
            oldest = min(steps)
            for old in self.directory.glob("state-*.json"):
                step = int(old.stem.split("-")[-1])
                if step < oldest and old != path:
                    old.unlink(missing_ok=True)
        return path

    def restore(self, global_step: int) -> bool:
        """Load the state saved at ``global_step``; whether there was one."""
        path = self.directory / f"state-{global_step:012d}.json"
        if not path.is_file():
            return False
        self.load_state_dict(json.loads(path.read_text()))
        return True


def train_selfplay(
    config: ExperimentConfig,
    selfplay: SelfPlayConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    run_name: str | None = None,
    root: str | Path = "runs",
    callbacks: Sequence[Any] = (),
    **kwargs: Any,
) -> tuple[TrainSummary, SelfPlay]:
    """Train ``config`` by self-play (see the module doc); resumes as :func:`~fugu.train.run.train`.

    ``config.env`` must be a two-rows-per-game env in self-play mode (``connect4-v1`` without
    ``opponent``). Other keyword arguments go to :func:`~fugu.train.run.train` (``quiet``,
    ``on_progress``, ``stop``, ``max_epochs``).

    Returns:
        The run's summary and the :class:`SelfPlay` state (pool, ratings, history).
    """
    from fugu.core.registry import make
    from fugu.train.build import build_algorithm
    from fugu.train.run import train
    from fugu.train.run_dir import open_run

    selfplay = selfplay or SelfPlayConfig()
    if config.env.kwargs.get("opponent") is not None:
        raise APIUsageError(
            "self-play needs the env's two-player mode: drop env.kwargs.opponent "
            f"({config.env.kwargs['opponent']!r})"
        )
    if config.train.double_buffer:
        raise APIUsageError(
            "self-play runs on one env shard: set train.double_buffer false (the opponents' "
            "batched actor spans all of the env's opponent rows)"
        )
    probe = make(config.env.id, num_envs=1, **config.env.kwargs)
    try:
        per_game = int(getattr(probe, "agents_per_env", 0))
        obs_space, act_space = probe.single_observation_space, probe.single_action_space
    finally:
        probe.close()
    if per_game != 2:
        raise APIUsageError(
            f"self-play needs a two-player env with two rows per game; {config.env.id} has "
            f"{per_game or 'an unknown number of'} rows per copy"
        )
    directory, _, checkpoint, _ = open_run(config, run_dir, run_name, root)
    template = build_algorithm(config, obs_space, act_space)
    policy = getattr(template, "policy", None)
    if not isinstance(policy, nn.Module):
        raise APIUsageError(
            f"self-play needs an algorithm with a `policy` module, not {config.algo}"
        )
    state_dir = directory / "selfplay"
    if checkpoint is None and state_dir.exists() and any(state_dir.iterdir()):
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        state_dir.rename(directory / f"selfplay-replaced-{stamp}")
    sp = SelfPlay(selfplay, config.env.num_envs, policy, state_dir, config)
    if checkpoint is not None:
        step = int(checkpoint.counters["global_step"])
        if not sp.restore(step):
            _log.warning("self-play: no saved state at step %d; starting a fresh pool", step)
    summary = train(
        config,
        callbacks=[sp, *callbacks],
        run_dir=directory,
        trainer_kwargs={"policy_map": sp.policy_map()},
        **kwargs,
    )
    return summary, sp
