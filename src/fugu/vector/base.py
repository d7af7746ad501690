"""What every fugu vectorization backend shares: buffers, batches and the call-order checks.

A backend holds ``num_instances`` env instances, each owning ``agents_per_env`` consecutive rows
of one :class:`~fugu.core.env.EnvBuffers`. Instances are grouped into batches of consecutive
instances; :meth:`VecEnvBase.recv` returns the batches in a fixed round-robin order, so a batch
is always a contiguous row range (its arrays are views, never copies) and runs are
deterministic. Subclasses implement five hooks (``_reset_all``, ``_step_all``,
``_start_reset``, ``_start_step`` and ``_wait``); this class owns the state machine that turns
wrong call orders into :class:`~fugu.core.errors.APIUsageError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from fugu.core.env import EnvBuffers, Infos, StepResult, write_actions
from fugu.core.errors import APIUsageError, WorkerError
from fugu.core.schema import Field, extra_fields_dict
from fugu.core.vec import VecBatch

__all__ = ["Probe", "Seed", "VecEnvBase", "instance_seed", "probe_env"]

Seed = int | list[int] | None
"""A reset seed: ``seed + i`` for row ``i``, one seed per row, or ``None``."""


def instance_seed(seed: Seed, lo: int, hi: int) -> int | list[int] | None:
    """The seed argument for the instance owning rows ``[lo, hi)``.

    Example:
        >>> instance_seed(10, 2, 4), instance_seed([5, 6, 7], 1, 2), instance_seed([5, 6, 7], 1, 3)
        (12, 6, [6, 7])
    """
    if seed is None or isinstance(seed, int):
        return None if seed is None else seed + lo
    return seed[lo] if hi - lo == 1 else seed[lo:hi]


LAYOUT_ATTRIBUTES = ("observation_layout", "action_layout")
"""Attributes of emulated envs (see :mod:`fugu.core.emulation`) that a vec env forwards, so a
policy can restore nested observations and decode structured actions from the vec env."""


class Probe(NamedTuple):
    """What a backend learns from one env built by :func:`probe_env`."""

    single_observation_space: spaces.Box
    single_action_space: spaces.Space
    num_agents: int
    layouts: dict[str, Any]
    """The :data:`LAYOUT_ATTRIBUTES` the env has."""
    extra_fields: dict[str, Field]
    """The env's declared extra fields (empty for envs that declare none)."""


def probe_env(factory: Any) -> Probe:
    """Build one env to learn its spaces, rows, layouts and extra fields, then close it.

    Returns:
        ``(single_observation_space, single_action_space, num_agents, layouts,
        extra_fields)``; an env without ``extra_fields`` (not a fugu env) has none.
    """
    probe = factory()
    try:
        layouts = {k: getattr(probe, k) for k in LAYOUT_ATTRIBUTES if hasattr(probe, k)}
        return Probe(
            probe.single_observation_space,
            probe.single_action_space,
            int(probe.num_agents),
            layouts,
            extra_fields_dict(getattr(probe, "extra_fields", {})),
        )
    finally:
        probe.close()


class VecEnvBase:
    """Common state and checks of the Serial and Multiprocessing backends.

    Args:
        single_observation_space: The observation space of one row.
        single_action_space: The action space of one row.
        buffers: The buffers holding every row, extra fields included (instances adopt slices
            of them).
        num_instances: Number of env instances.
        batch_size: Instances per :meth:`recv` batch; must divide ``num_instances``.
        seed: Seed of the first reset when :meth:`reset` / :meth:`async_reset` get none.
    """

    def __init__(
        self,
        single_observation_space: spaces.Box,
        single_action_space: spaces.Space,
        buffers: EnvBuffers,
        num_instances: int,
        batch_size: int,
        seed: int | None = None,
    ) -> None:
        if num_instances % batch_size:
            raise APIUsageError(f"batch_size ({batch_size}) must divide num_envs ({num_instances})")
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.buffers = buffers
        self.observations = buffers.observations
        self.actions = buffers.actions
        self.rewards = buffers.rewards
        self.terminals = buffers.terminals
        self.truncations = buffers.truncations
        self.masks = buffers.masks
        self.final_observations = buffers.final_observations
        self.extra_fields: Mapping[str, Field] = buffers.extra_fields
        self.extras: Mapping[str, np.ndarray] = buffers.extras
        self.__dict__.update(buffers.extras)  # env.costs, env.action_masks, ... as on envs
        self.num_agents = buffers.num_rows
        self.num_instances = int(num_instances)
        self.agents_per_env = self.num_agents // self.num_instances
        self.batch_size = int(batch_size)
        self.num_batches = self.num_instances // self.batch_size
        self.closed = False
        self._default_seed = seed
        self._mode: str | None = None  # None until reset ("sync") or async_reset ("async")
        self._next_batch = 0  # batch returned by the next recv()
        self._user_batch: int | None = None  # batch handed out by recv(), awaiting send()
        self._error: str | None = None  # set once a worker failed: every later call re-raises
        rows = self.agents_per_env * self.batch_size
        self._batch_rows = [(b * rows, (b + 1) * rows) for b in range(self.num_batches)]
        self._batch_views = [
            (buffers.rows(lo, hi), np.arange(lo, hi, dtype=np.int64)) for lo, hi in self._batch_rows
        ]

    # -- hooks ------------------------------------------------------------------------------
    def _reset_all(self, seed: Seed) -> Infos:
        """Reset every instance and wait for it; return the infos."""
        raise NotImplementedError

    def _step_all(self) -> Infos:
        """Step every instance with ``self.actions`` and wait for it; return the infos."""
        raise NotImplementedError

    def _start_reset(self, seed: Seed) -> None:
        """Start resetting every instance (results collected by ``_wait``, batch by batch)."""
        raise NotImplementedError

    def _start_step(self, batch: int) -> None:
        """Start stepping the instances of ``batch`` with their rows of ``self.actions``."""
        raise NotImplementedError

    def _wait(self, batch: int) -> Infos:
        """Wait until ``batch`` finished its last reset or step; return its infos."""
        raise NotImplementedError

    def _drain(self) -> None:
        """Wait for every batch that is still computing (before a synchronous call)."""
        if self._mode != "async":
            return
        for offset in range(self.num_batches):
            batch = (self._next_batch + offset) % self.num_batches
            if batch != self._user_batch:
                self._wait(batch)
        self._user_batch = None
        self._mode = None

    def _close(self) -> None:
        """Release the backend's resources (called once)."""

    # -- VecEnv protocol --------------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        """Number of rows (one per agent; equals the number of instances for 1-agent envs)."""
        return self.num_agents

    @property
    def agents_per_batch(self) -> int:
        """Rows returned by each :meth:`recv`."""
        return self.agents_per_env * self.batch_size

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[np.ndarray, Infos]:
        """Reset every row synchronously; row ``i`` is seeded with ``seed + i`` (or ``seed[i]``).

        Returns:
            ``(observations, infos)``; ``observations`` is the full buffer (a view).
        """
        self._check_usable("reset")
        self._drain()
        infos = self._reset_all(self._seed(seed))
        self._mode = "sync"
        return self.observations, infos

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every row with ``actions`` (shape ``[num_agents, *act_shape]``), synchronously.

        Returns:
            ``(observations, rewards, terminals, truncations, infos)``, views of the buffers.
        """
        if self._mode != "sync":
            self._check_usable("step")
            if self._mode is None:
                raise APIUsageError("step() called before reset(); call reset() first")
            raise APIUsageError(
                "step() called while stepping asynchronously (after async_reset()); "
                "use send()/recv(), or call reset() to step synchronously again"
            )
        if self._error is not None:
            raise WorkerError(self._error)
        if actions is not self.actions:
            write_actions(self.actions, actions)
        infos = self._step_all()
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def async_reset(self, seed: int | Sequence[int] | None = None) -> None:
        """Start resetting every row; the batches come back from :meth:`recv` in order."""
        self._check_usable("async_reset")
        self._drain()
        self._start_reset(self._seed(seed))
        self._mode = "async"
        self._next_batch = 0
        self._user_batch = None

    def send(self, actions: np.ndarray) -> None:
        """Step the rows of the last :meth:`recv` batch with ``actions`` (without waiting)."""
        batch = self._user_batch
        if batch is None:
            self._check_usable("send")
            if self._mode != "async":
                raise APIUsageError("send() called before async_reset(); call async_reset() first")
            raise APIUsageError(
                "send() called twice without recv(); call recv() to get the next batch first"
            )
        if self._error is not None:
            raise WorkerError(self._error)
        view = self._batch_views[batch][0].actions
        if actions is not view:
            write_actions(view, actions)
        self._user_batch = None
        self._start_step(batch)

    def recv(self) -> VecBatch:
        """Wait for the next batch (round-robin order) and return views of its rows."""
        if self._mode != "async" or self._user_batch is not None or self._error is not None:
            self._check_usable("recv")
            if self._mode != "async":
                raise APIUsageError(
                    "recv() called without a pending async_reset() or send(); "
                    "call async_reset() first"
                )
            raise APIUsageError(
                "recv() called twice without send(); send actions for the last batch first"
            )
        batch = self._next_batch
        infos = self._wait(batch)
        self._next_batch = (batch + 1) % self.num_batches
        self._user_batch = batch
        rows, env_ids = self._batch_views[batch]
        return VecBatch(
            rows.observations,
            rows.rewards,
            rows.terminals,
            rows.truncations,
            rows.final_observations,
            infos,
            env_ids,
            rows.masks,
            rows.extras,
        )

    def close(self) -> None:
        """Release every resource. Idempotent; later calls other than ``close`` raise."""
        if self.closed:
            return
        self.closed = True
        self._mode = self._user_batch = None  # every later call takes the checked path
        self._close()

    def __enter__(self) -> VecEnvBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------
    def _check_usable(self, call: str) -> None:
        if self.closed:
            raise APIUsageError(f"{call}() called after close(); create a new vec env")
        if self._error is not None:
            raise WorkerError(self._error)

    def _seed(self, seed: int | Sequence[int] | None) -> Seed:
        if seed is None:
            seed, self._default_seed = self._default_seed, None
            return seed
        if isinstance(seed, (int, np.integer)):
            return int(seed)
        try:
            seeds = [int(s) for s in seed]
        except (TypeError, ValueError):
            raise APIUsageError(
                f"seed must be an int (row i gets seed + i), one int per row, or None; "
                f"got {type(seed).__name__}"
            ) from None
        if len(seeds) != self.num_agents:
            raise APIUsageError(
                f"a seed list needs one seed per row ({self.num_agents}), got {len(seeds)}"
            )
        return seeds
