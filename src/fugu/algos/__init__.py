"""One module per algorithm (algorithms never import each other), the protocol they satisfy
(:mod:`fugu.algos.base`) and the lazy registry that finds them (:mod:`fugu.algos.registry`)."""

from fugu.algos.base import Actor, ActOutput, Algorithm, Collection
from fugu.algos.ppo import PPO, PPOConfig
from fugu.algos.registry import (
    algorithm_names,
    get_algorithm,
    register_algorithm,
    unregister_algorithm,
)

__all__ = [
    "PPO",
    "ActOutput",
    "Actor",
    "Algorithm",
    "Collection",
    "PPOConfig",
    "algorithm_names",
    "get_algorithm",
    "register_algorithm",
    "unregister_algorithm",
]
