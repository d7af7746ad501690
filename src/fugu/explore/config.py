"""The ``[explore]`` config section and the factory of the exploration hooks it selects.

``method = "rnd"`` or ``"icm"`` adds that hook to the trainer (``"none"``, the default, adds
nothing). The hook's bonus goes to the reward of any rollout algorithm, or, for an algorithm
with an intrinsic critic (``ppo_rnd``: ``train.algo = "ppo_rnd"``), to that critic
(``intrinsic_rewards``). From the command line::

    fugu train deep-sea-v1 --algo ppo_rnd --explore.method rnd --env.kwargs '{"size": 20}'

Example:
    >>> from gymnasium import spaces
    >>> hooks = make_reward_hooks(ExploreConfig(method="rnd"), None, spaces.Box(0, 1, (4,)),
    ...                           spaces.Discrete(2), seed=0)
    >>> [(h.name, h.target) for h in hooks]
    [('rnd', 'rewards')]
    >>> make_reward_hooks(ExploreConfig(), None, spaces.Box(0, 1, (4,)), spaces.Discrete(2))
    []
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces

from fugu.core.errors import APIUsageError

__all__ = ["EXPLORE_METHODS", "ExploreConfig", "make_reward_hooks"]

EXPLORE_METHODS = ("none", "rnd", "icm")
"""Values of ``explore.method``."""


@dataclass(frozen=True)
class ExploreConfig:
    """Which exploration bonus to add, and its main knobs (the rest keep the hooks' defaults:
    :class:`~fugu.explore.rnd.RNDConfig`, :class:`~fugu.explore.icm.ICMConfig`)."""

    method: str = "none"
    """``"none"``, ``"rnd"`` (random network distillation) or ``"icm"`` (curiosity)."""
    coef: float = 1.0
    """Scale of the (normalised) intrinsic reward."""
    learning_rate: float | None = None
    """Adam step size of the hook's networks (``None``: the hook's default, RND 3e-4 and
    ICM 1e-3)."""
    update_epochs: int = 4
    """Passes of the hook's training over each rollout."""
    num_minibatches: int = 4
    """Minibatches per pass."""
    update_proportion: float = 0.25
    """RND: fraction of each rollout the predictor trains on."""
    beta: float = 0.2
    """ICM: weight of the forward loss (the inverse loss gets ``1 - beta``)."""
    gamma: float = 0.99
    """Discount of the intrinsic returns whose spread normalises the rewards."""
    normalize_rewards: bool = True
    """Divide the rewards by that spread."""
    norm_horizon: float | None = None
    """Samples that spread is measured over (older ones forgotten); ``None``: all of them."""

    def __post_init__(self) -> None:
        if self.method not in EXPLORE_METHODS:
            raise APIUsageError(
                f"explore.method must be one of {EXPLORE_METHODS}, got {self.method!r}"
            )


def make_reward_hooks(
    config: ExploreConfig,
    algo: Any,
    observation_space: spaces.Box,
    action_space: spaces.Space,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> list[Any]:
    """The reward hooks ``config`` selects (empty for ``method = "none"``).

    Args:
        config: The ``[explore]`` section.
        algo: The trained algorithm (or ``None``); one with an ``intrinsic_rewards_key`` (such
            as ``ppo_rnd``) gets the bonus in that batch entry, any other in ``rewards``.
        observation_space: The env's single observation space.
        action_space: The env's single action space.
        seed: Seed of the hook's networks and shuffling (the run's seed).
        device: Where the hook runs (default: the algorithm's device, else the CPU).
    """
    if config.method == "none":
        return []
    target = getattr(algo, "intrinsic_rewards_key", None) or "rewards"
    if device is None:
        device = getattr(algo, "device", "cpu")
    common: dict[str, Any] = {
        "coef": config.coef,
        "update_epochs": config.update_epochs,
        "num_minibatches": config.num_minibatches,
        "gamma": config.gamma,
        "normalize_rewards": config.normalize_rewards,
        "norm_horizon": config.norm_horizon,
        "seed": seed,
    }
    if config.learning_rate is not None:
        common["learning_rate"] = config.learning_rate
    if config.method == "rnd":
        from fugu.explore.rnd import RND, RNDConfig

        rnd = RNDConfig(**common, update_proportion=config.update_proportion)
        return [RND(observation_space, rnd, target=target, device=device)]
    from fugu.explore.icm import ICM, ICMConfig

    icm = ICMConfig(**common, beta=config.beta)
    return [ICM(observation_space, action_space, icm, target=target, device=device)]
