"""The env contract: preallocated row buffers written in place (DESIGN.md section 2).

An env owns ``num_agents`` rows. Every per-agent quantity is one row of a preallocated buffer
that the env writes in place and returns as a view:

* ``observations [A, *obs_shape]`` (dtype of ``single_observation_space``)
* ``actions [A, *act_shape]`` (int32 for discrete spaces, float32 for Box)
* ``rewards [A] float32``, ``terminals [A] bool``, ``truncations [A] bool``
* ``masks [A] bool``: the row holds a live agent
* ``final_observations [A, *obs_shape]``: for rows whose episode ended on the last step, the
  observation that ended it (autoreset is same-step, so ``observations`` already holds the
  first observation of the next episode). A trainer bootstraps truncated rows from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.errors import APIUsageError, EnvContractError
from fugu.core.spaces import action_dtype, action_shape, check_single_spaces
from fugu.core.vec import VecBatch

__all__ = ["EnvBuffers", "Infos", "PufferEnv", "StepResult", "write_actions"]

Infos = list[dict[str, Any]]
"""Aggregated episode statistics: a short list of plain dicts, never one dict per row."""

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Infos]
"""``(observations, rewards, terminals, truncations, infos)``, all views of env buffers."""


def write_actions(target: np.ndarray, actions: Any) -> np.ndarray:
    """Copy ``actions`` into the action rows ``target`` after checking their shape.

    A no-op when ``actions`` is ``target`` itself (callers that write the buffer in place).

    Example:
        >>> rows = np.zeros(2, dtype=np.int32)
        >>> write_actions(rows, [1, 0]).tolist()
        [1, 0]
        >>> write_actions(rows, [1, 0, 1])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: actions must have shape (2,) (one row per agent), got (3,)
    """
    if actions is not target:
        actions = np.asarray(actions)
        if actions.shape != target.shape:
            raise APIUsageError(
                f"actions must have shape {target.shape} (one row per agent), got {actions.shape}"
            )
        target[...] = actions
    return target


@dataclass
class EnvBuffers:
    """The row buffers of an env, allocated once and written in place.

    A vectorizer allocates one ``EnvBuffers`` for all its rows (possibly in shared memory) and
    hands each env a :meth:`rows` view, so envs write straight into the batch.

    Example:
        >>> b = EnvBuffers.allocate(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), 4)
        >>> b.observations.shape, b.actions.dtype, b.num_rows
        ((4, 3), dtype('int32'), 4)
        >>> part = b.rows(2, 4)
        >>> part.rewards[:] = 1.0
        >>> b.rewards.tolist()
        [0.0, 0.0, 1.0, 1.0]
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    masks: np.ndarray
    final_observations: np.ndarray

    @property
    def num_rows(self) -> int:
        """Number of rows (agents) the buffers hold."""
        return int(self.rewards.shape[0])

    @staticmethod
    def layout(
        observation_space: spaces.Space, action_space: spaces.Space, num_rows: int
    ) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Shapes and dtypes of every buffer, by field name, for ``num_rows`` rows.

        Example:
            >>> EnvBuffers.layout(spaces.Box(0, 1, (2,)), spaces.Discrete(3), 5)["actions"]
            ((5,), dtype('int32'))
        """
        check_single_spaces(observation_space, action_space)
        obs = ((num_rows, *observation_space.shape), np.dtype(observation_space.dtype))
        return {
            "observations": obs,
            "actions": ((num_rows, *action_shape(action_space)), action_dtype(action_space)),
            "rewards": ((num_rows,), np.dtype(np.float32)),
            "terminals": ((num_rows,), np.dtype(np.bool_)),
            "truncations": ((num_rows,), np.dtype(np.bool_)),
            "masks": ((num_rows,), np.dtype(np.bool_)),
            "final_observations": obs,
        }

    @classmethod
    def allocate(
        cls, observation_space: spaces.Space, action_space: spaces.Space, num_rows: int
    ) -> EnvBuffers:
        """Allocate zeroed buffers (masks start all-true) for ``num_rows`` rows."""
        layout = cls.layout(observation_space, action_space, num_rows)
        arrays = {name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in layout.items()}
        arrays["masks"][:] = True
        return cls(**arrays)

    def rows(self, start: int, stop: int) -> EnvBuffers:
        """Views of rows ``[start, stop)`` of every buffer (no copy)."""
        return EnvBuffers(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    def check(
        self, observation_space: spaces.Space, action_space: spaces.Space, num_rows: int
    ) -> None:
        """Raise :class:`EnvContractError` unless every buffer has the layout of the spaces."""
        for name, (shape, dtype) in self.layout(observation_space, action_space, num_rows).items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray):
                raise EnvContractError(f"buffer {name!r} must be a numpy array, got {type(array)}")
            if array.shape != shape or array.dtype != dtype:
                raise EnvContractError(
                    f"buffer {name!r} must have shape {shape} and dtype {dtype}, "
                    f"got shape {array.shape} and dtype {array.dtype}"
                )


class PufferEnv:
    """Base class of fugu envs: vectorized by nature, writing preallocated buffers in place.

    Subclasses call ``super().__init__`` with their single spaces and row count, then implement
    :meth:`reset` and :meth:`step`, writing ``self.observations``, ``self.rewards``, ... in place
    and returning them. Autoreset is same-step: the step that ends a row's episode sets its
    terminal or truncation flag, copies the observation that ended it into
    ``self.final_observations`` and writes the next episode's first observation.

    Every ``PufferEnv`` is also a (single-batch) vec env: :meth:`async_reset`, :meth:`send` and
    :meth:`recv` run synchronously over all rows.

    Args:
        single_observation_space: A ``Box`` describing one row's observation.
        single_action_space: ``Discrete``, ``MultiDiscrete`` or ``Box`` for one row's action.
        num_agents: Number of rows.
        buffers: Buffers to adopt (from a vectorizer); allocated when ``None``.
    """

    render_mode: str | None = None

    def __init__(
        self,
        single_observation_space: spaces.Space,
        single_action_space: spaces.Space,
        num_agents: int,
        buffers: EnvBuffers | None = None,
    ) -> None:
        if int(num_agents) < 1:
            raise EnvContractError(f"num_agents must be >= 1, got {num_agents}")
        check_single_spaces(single_observation_space, single_action_space)
        self.single_observation_space: spaces.Box = single_observation_space  # type: ignore[assignment]
        self.single_action_space: spaces.Space = single_action_space
        self.num_agents = int(num_agents)
        if buffers is None:
            buffers = EnvBuffers.allocate(single_observation_space, single_action_space, num_agents)
        else:
            buffers.check(single_observation_space, single_action_space, self.num_agents)
        self.buffers = buffers
        self.observations = buffers.observations
        self.actions = buffers.actions
        self.rewards = buffers.rewards
        self.terminals = buffers.terminals
        self.truncations = buffers.truncations
        self.masks = buffers.masks
        self.final_observations = buffers.final_observations
        self.closed = False
        self._awaiting: str | None = None  # "reset" or "step" between send and recv
        self._started = False  # async_reset() has been called
        self._pending_infos: Infos = []
        self._env_ids = np.arange(self.num_agents, dtype=np.int64)

    # -- the contract -----------------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        """Number of rows, as vector libraries call it (one env copy per row)."""
        return self.num_agents

    @property
    def agents_per_batch(self) -> int:
        """Rows returned by each :meth:`recv` (all rows for a plain env)."""
        return self.num_agents

    def reset(self, seed: int | Sequence[int] | None = None) -> tuple[np.ndarray, Infos]:
        """Reset every row and return ``(observations, infos)``; row ``i`` uses ``seed + i``."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every row with ``actions`` and return views of the buffers and the infos."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources. Idempotent."""
        self.closed = True

    def render(self, row: int = 0) -> np.ndarray:
        """An RGB ``uint8 [H, W, 3]`` image of row ``row`` (envs that can render override it)."""
        raise APIUsageError(f"{type(self).__name__} does not implement render()")

    # -- helpers for subclasses -------------------------------------------------------------
    def _write_actions(self, actions: np.ndarray) -> np.ndarray:
        """Copy ``actions`` into the action buffer (see :func:`write_actions`)."""
        return write_actions(self.actions, actions)

    def _check_open(self) -> None:
        if self.closed:
            raise APIUsageError(f"{type(self).__name__} is closed; create a new env")

    # -- vec-env surface (one synchronous batch) --------------------------------------------
    def async_reset(self, seed: int | None = None) -> None:
        """Start a reset; its result is returned by the next :meth:`recv`."""
        self._check_open()
        _, self._pending_infos = self.reset(seed)
        self.rewards[:] = 0.0
        self.terminals[:] = False
        self.truncations[:] = False
        self._awaiting = "reset"
        self._started = True

    def send(self, actions: np.ndarray) -> None:
        """Step with ``actions`` for the rows of the last :meth:`recv`."""
        self._check_open()
        if not self._started:
            raise APIUsageError("send() called before async_reset(); call async_reset() first")
        if self._awaiting is not None:
            raise APIUsageError("send() called twice without recv(); call recv() first")
        *_, self._pending_infos = self.step(actions)
        self._awaiting = "step"

    def recv(self) -> VecBatch:
        """Return the batch computed by the last :meth:`async_reset` or :meth:`send`."""
        self._check_open()
        if self._awaiting is None:
            raise APIUsageError("recv() called without a pending async_reset() or send()")
        self._awaiting = None
        infos, self._pending_infos = self._pending_infos, []
        return VecBatch(
            self.observations,
            self.rewards,
            self.terminals,
            self.truncations,
            self.final_observations,
            infos,
            self._env_ids,
            self.masks,
        )
