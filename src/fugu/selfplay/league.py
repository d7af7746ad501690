"""League play on top of the pool: main exploiters that hunt the main agent's weaknesses.

As in AlphaStar's league, a **main exploiter** trains only against the current main agent
(frozen), starting from the main agent's own weights; when it scores at least ``threshold``
against it, its snapshot joins the pool as ``exploit-<epoch>``, where PFSP makes the main
agent play it until the weakness is gone. The exploiter is then discarded (reset to the main
agent the next time). :class:`~fugu.selfplay.run.SelfPlay` calls :func:`train_exploiter`
every ``exploiter_interval`` epochs when the league is on (``selfplay.exploiter_interval``).

Example:
    >>> config = LeagueSettings(interval=20, epochs=5)
    >>> config.enabled, config.threshold
    (True, 0.6)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fugu.selfplay.matchmaking import Matchmaker
from fugu.train.experiment import ExperimentConfig

__all__ = ["LeagueSettings", "train_exploiter"]


@dataclass(frozen=True)
class LeagueSettings:
    """Main exploiters (:attr:`SelfPlayConfig.exploiter_interval` and friends)."""

    interval: int = 0
    """Epochs between main exploiters (0: no league, only the pool)."""
    epochs: int = 10
    """Epochs an exploiter trains against the frozen main agent."""
    threshold: float = 0.6
    """Score against the main agent an exploiter needs to join the pool."""

    @property
    def enabled(self) -> bool:
        """Whether main exploiters are trained."""
        return self.interval > 0


def train_exploiter(
    config: ExperimentConfig,
    main_policy: torch.nn.Module,
    main_actor: Any,
    epochs: int,
    seed: int = 0,
) -> tuple[torch.nn.Module, float]:
    """Train a main exploiter: the main agent's weights, trained ``epochs`` epochs against
    ``main_actor`` (a frozen main agent) on one row of every game of ``config``'s env.

    Returns:
        The exploiter's policy and its score (draws half) against the main agent over the
        second half of its training.
    """
    from fugu.train.build import build_trainer

    games = config.env.num_envs
    matchmaker = Matchmaker(games, num_slots=1, num_mirror_games=0)
    mux = matchmaker.mux([main_actor])
    exploiter_config = config.with_overrides(
        {"train.seed": seed, "train.total_timesteps": epochs * games * config.train.num_steps}
    )
    trainer = build_trainer(exploiter_config, policy_map=matchmaker.policy_map(mux))
    try:
        policy = getattr(trainer.algo, "policy")  # noqa: B009 - checked by the caller
        policy.load_state_dict(main_policy.state_dict())
        wins = draws = losses = 0
        for epoch in range(epochs):
            trainer.train_epoch()
            if epoch >= epochs // 2:
                t = trainer.collector.storage.tensors
                ((w, d, lost),) = matchmaker.tally(t["rewards"], t["terminals"] | t["truncations"])
                wins, draws, losses = wins + w, draws + d, losses + lost
    finally:
        trainer.close()
    games_played = wins + draws + losses
    score = (wins + 0.5 * draws) / games_played if games_played else 0.0
    return policy, score
