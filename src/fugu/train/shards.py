"""Env shards: the vec envs a trainer steps, with zero-copy tensor views of their buffers.

Given two shards (see :func:`make_train_envs`), one steps on a worker thread while the policy
acts on the other: native envs release the GIL, so the two overlap on two cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fugu.buffers import PolicyState
from fugu.core.errors import APIUsageError
from fugu.core.registry import make
from fugu.core.vec import VecEnv

__all__ = [
    "STEP_FIELDS",
    "Shard",
    "action_bounds",
    "env_extra_fields",
    "make_train_envs",
    "shard_seeds",
]

STEP_FIELDS = frozenset({"costs"})
"""Declared env fields that are outcomes of a step (read after it, like ``rewards``). Every
other declared field (``action_masks``, ``global_state``, ``roles``, ``goals``...) describes
the observation it comes with and is read before acting."""


def make_train_envs(
    env_id: str, num_envs: int, seed: int = 0, double_buffer: bool = True, **kwargs: Any
) -> list[VecEnv]:
    """Build the env shards a trainer steps: two halves when double-buffering.

    Shard ``k`` is built with ``seed`` offset by the env copies before it; a trainer resets
    it with the same seed, so a native env's copies are seeded exactly as one env of
    ``num_envs`` copies would be (whatever its rows per copy).

    Example:
        >>> shards = make_train_envs("cartpole-v1", 8, seed=1)
        >>> [s.num_agents for s in shards], shard_seeds(shards, 1)
        ([4, 4], [1, 5])
    """
    if num_envs < 1:
        raise APIUsageError(f"num_envs must be >= 1, got {num_envs}")
    sizes = (
        [num_envs // 2, num_envs - num_envs // 2] if double_buffer and num_envs > 1 else [num_envs]
    )
    shards, offset = [], 0
    for size in sizes:
        shards.append(make(env_id, num_envs=size, seed=seed + offset, **kwargs))
        offset += size
    return shards


def shard_seeds(envs: Sequence[Any], seed: int) -> list[int]:
    """The reset seed of each shard: ``seed`` offset by the env copies of the shards before.

    A native env seeds copy ``i`` with ``seed + i`` (its rows per copy share the copy's
    generator); other vec envs seed row ``i`` with ``seed + i``, so their copies are rows.
    """
    seeds, offset = [], 0
    for env in envs:
        seeds.append(seed + offset)
        offset += int(getattr(env, "num_copies", env.num_agents))
    return seeds


def action_bounds(space: Any) -> tuple[Tensor, Tensor] | None:
    """``(low, high)`` tensors of a ``Box`` action space with finite bounds, else ``None``:
    what the env receives is clipped to them (the rollout stores the sampled actions).

    Example:
        >>> from gymnasium import spaces
        >>> low, high = action_bounds(spaces.Box(-2.0, 2.0, (1,)))
        >>> low.tolist(), high.tolist(), action_bounds(spaces.Discrete(3))
        ([-2.0], [2.0], None)
    """
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        return None
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        return None
    return torch.as_tensor(space.low, dtype=torch.float32), torch.as_tensor(
        space.high, dtype=torch.float32
    )


def env_extra_fields(env: Any) -> dict[str, Any]:
    """The env's declared extra fields (``{}`` for envs that declare none)."""
    return dict(getattr(env, "extra_fields", None) or {})


class Shard:
    """One env and the tensor views of its buffers, owning rows ``[lo, hi)`` of the vec env.

    Attributes:
        learner_rows: Local row indices the learner acts on and stores (``None``: all rows).
        columns: ``(start, stop)`` of the shard's learner rows among the stored columns.
    """

    def __init__(self, env: VecEnv, lo: int, device: torch.device) -> None:
        self.env = env
        self.lo, self.hi = lo, lo + int(env.num_agents)
        self.num_rows = self.hi - self.lo
        self.obs = torch.from_numpy(env.observations)
        self.final_obs = torch.from_numpy(env.final_observations)
        self.rewards = torch.from_numpy(env.rewards)
        self.terminals = torch.from_numpy(env.terminals)
        self.truncations = torch.from_numpy(env.truncations)
        self.actions = torch.from_numpy(env.actions)
        self.masks = torch.from_numpy(env.masks)
        extras: Mapping[str, np.ndarray] = getattr(env, "extras", None) or {}
        self.extras: dict[str, Tensor] = {k: torch.from_numpy(v) for k, v in extras.items()}
        self.obs_extras = {k: v for k, v in self.extras.items() if k not in STEP_FIELDS}
        self.pinned: Tensor | None = None
        if device.type == "cuda":
            self.pinned = torch.empty_like(self.obs).pin_memory()
        self.future: Future[Any] | None = None
        self.state: PolicyState = None
        self.infos: list[dict[str, Any]] = []
        self.learner_rows: Tensor | None = None
        self.columns = (0, 0)

    def obs_on(self, device: torch.device) -> Tensor:
        """The current observations, staged in pinned memory for a non-blocking copy on CUDA.

        The staging buffer is reused: the caller's copy to the device is ordered before the
        next call because acting waits for the actions on the host.
        """
        if self.pinned is None:
            return self.obs
        self.pinned.copy_(self.obs)
        return self.pinned

    def step(self) -> None:
        """Step the env with its action buffer, keeping the infos."""
        *_, infos = self.env.step(self.env.actions)
        if infos:
            self.infos.extend(infos)

    def flush_infos(self) -> None:
        """Collect the infos a native env has aggregated but not yet reported."""
        flush = getattr(self.env, "flush_infos", None)
        if flush is not None:
            self.infos.extend(flush())
