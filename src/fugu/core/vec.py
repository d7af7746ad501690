"""The ``VecEnv`` protocol every vectorization backend (and every native env) implements."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from fugu.core.schema import Field

__all__ = ["NO_EXTRAS", "VecBatch", "VecEnv"]

NO_EXTRAS: Mapping[str, np.ndarray] = MappingProxyType({})
"""The (read-only, shared) ``extras`` of a batch whose env declares no extra fields."""


class VecBatch(NamedTuple):
    """One batch of rows returned by :meth:`VecEnv.recv`; arrays are views, never copies.

    ``env_ids`` are the row indices of the batch in the vec env's full buffers (a contiguous
    range for fugu's backends), ``masks`` flags rows holding a live agent, and
    ``final_observations`` holds, for rows whose episode just ended, the observation that ended
    it (autoreset is same-step), so truncated rows can be bootstrapped. ``extras`` holds the
    batch's rows of every extra field the env declares (``VecEnv.extra_fields``), by name.
    """

    observations: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    final_observations: np.ndarray
    infos: list[dict[str, Any]]
    env_ids: np.ndarray
    masks: np.ndarray
    extras: Mapping[str, np.ndarray] = NO_EXTRAS


@runtime_checkable
class VecEnv(Protocol):
    """A batch of env rows stepped synchronously (``reset``/``step``) or in batches
    (``async_reset``/``send``/``recv``).

    ``send(actions)`` takes the actions for the rows of the previous ``recv``; with
    ``agents_per_batch < num_agents`` the other rows keep stepping meanwhile. ``extra_fields``
    declares the env's extra per-row buffers and ``extras`` holds them, ``[num_agents, *shape]``
    each (see :mod:`fugu.core.schema`).
    """

    single_observation_space: spaces.Box
    single_action_space: spaces.Space
    num_agents: int
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    masks: np.ndarray
    final_observations: np.ndarray
    extra_fields: Mapping[str, Field]
    extras: Mapping[str, np.ndarray]

    @property
    def num_envs(self) -> int: ...

    @property
    def agents_per_batch(self) -> int: ...

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]: ...

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]: ...

    def async_reset(self, seed: int | None = None) -> None: ...

    def send(self, actions: np.ndarray) -> None: ...

    def recv(self) -> VecBatch: ...

    def close(self) -> None: ...
