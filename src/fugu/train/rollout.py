"""Rollout storage: preallocated ``[T, N, ...]`` tensors filled step by step, handed to PPO."""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import Tensor

from fugu.algos.ppo import PPOBatch
from fugu.core.spaces import action_shape
from fugu.models.policy import PolicyState
from fugu.ops import next_values_from

__all__ = ["RolloutStorage"]

_TORCH_DTYPES = {
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "bool": torch.bool,
}


class RolloutStorage:
    """``num_steps x num_rows`` tensors of one rollout, allocated once on ``device``.

    Example:
        >>> s = RolloutStorage(spaces.Box(-1, 1, (4,)), spaces.Discrete(2), 8, 3)
        >>> s.observations.shape, s.actions.dtype
        (torch.Size([8, 3, 4]), torch.int64)
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        num_steps: int,
        num_rows: int,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (num_steps, num_rows)
        obs_dtype = _TORCH_DTYPES[str(observation_space.dtype)]
        act_dtype = torch.float32 if isinstance(action_space, spaces.Box) else torch.int64

        def zeros(*extra: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros((*shape, *extra), dtype=dtype, device=device)

        self.num_steps = num_steps
        self.num_rows = num_rows
        self.observations = zeros(*observation_space.shape, dtype=obs_dtype)
        self.actions = zeros(*action_shape(action_space), dtype=act_dtype)
        self.logprobs = zeros()
        self.values = zeros()
        self.rewards = zeros()
        self.terminals = zeros(dtype=torch.bool)
        self.truncations = zeros(dtype=torch.bool)
        self.final_values = zeros()
        self.starts = zeros(dtype=torch.bool)
        self.masks = torch.ones(shape, dtype=torch.bool, device=device)
        self.last_values = torch.zeros(num_rows, device=device)
        self.initial_state: PolicyState = None

    def batch(self) -> PPOBatch:
        """The filled rollout as a :class:`~fugu.algos.ppo.PPOBatch` (views, no copies).

        ``masks`` (live agents) is passed only when some row was dead at some step.
        """
        next_values = next_values_from(
            self.values, self.last_values, self.truncations, self.final_values
        )
        return PPOBatch(
            observations=self.observations,
            actions=self.actions,
            logprobs=self.logprobs,
            values=self.values,
            rewards=self.rewards,
            terminals=self.terminals,
            truncations=self.truncations,
            next_values=next_values,
            starts=self.starts,
            initial_state=self.initial_state,
            masks=None if bool(self.masks.all()) else self.masks,
        )
