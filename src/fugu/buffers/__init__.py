"""Storage of collected data: rollouts ``[T, N, ...]``, replay rings, and their batches."""

from fugu.buffers.batch import Batch, PolicyState
from fugu.buffers.her import HER_STRATEGIES, HindsightRelabeler
from fugu.buffers.replay import Prioritized, ReplayBuffer
from fugu.buffers.rollout import RolloutStorage, rollout_fields, torch_dtype
from fugu.buffers.sumtree import SumTree

__all__ = [
    "HER_STRATEGIES",
    "Batch",
    "HindsightRelabeler",
    "PolicyState",
    "Prioritized",
    "ReplayBuffer",
    "RolloutStorage",
    "SumTree",
    "rollout_fields",
    "torch_dtype",
]
