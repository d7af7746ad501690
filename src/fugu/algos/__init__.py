"""One module per algorithm; algorithms never import each other."""

from fugu.algos.ppo import PPO, PPOBatch, PPOConfig

__all__ = ["PPO", "PPOBatch", "PPOConfig"]
