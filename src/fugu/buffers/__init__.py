"""Storage of collected data: rollouts ``[T, N, ...]``, replay rings, and their batches."""

from fugu.buffers.batch import Batch, PolicyState
from fugu.buffers.replay import ReplayBuffer
from fugu.buffers.rollout import RolloutStorage, rollout_fields, torch_dtype

__all__ = [
    "Batch",
    "PolicyState",
    "ReplayBuffer",
    "RolloutStorage",
    "rollout_fields",
    "torch_dtype",
]
