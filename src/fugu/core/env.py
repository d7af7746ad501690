"""The env contract: preallocated row buffers written in place (DESIGN.md section 2).

An env owns ``num_agents`` rows. Every per-agent quantity is one row of a preallocated buffer
that the env writes in place and returns as a view:

* ``observations [A, *obs_shape]`` (dtype of ``single_observation_space``)
* ``actions [A, *act_shape]`` (int32 for discrete spaces, float32 for Box)
* ``rewards [A] float32``, ``terminals [A] bool``, ``truncations [A] bool``
* ``masks [A] bool``: describes the returned observations: True iff the row's agent acts on
  the next step. The step on which an agent dies reports its flags and reward with ``masks``
  already False (True only if the row autoresets into a new live episode on that step).
* ``final_observations [A, *obs_shape]``: for rows whose episode ended on the last step, the
  observation that ended it (autoreset is same-step, so ``observations`` already holds the
  first observation of the next episode). A trainer bootstraps truncated rows from it.

An env may declare *extra fields* (:class:`fugu.core.schema.Field`: action masks, costs,
roles, ...): more preallocated row buffers, written in place like the standard ones and carried
by every backend (``env.extras``, ``VecBatch.extras``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.errors import APIUsageError, EnvContractError
from fugu.core.schema import (
    STANDARD_FIELD_NAMES,
    Field,
    check_array,
    extra_fields_dict,
    schema,
)
from fugu.core.spaces import check_single_spaces
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


def check_action_values(space: spaces.Space, actions: Any) -> None:
    """Raise :class:`APIUsageError` for actions outside ``space`` (one pass over the batch).

    Example:
        >>> check_action_values(spaces.Discrete(2), np.array([0, 1]))
        >>> check_action_values(spaces.Discrete(2), np.array([0, 2]))
        Traceback (most recent call last):
        ...
        fugu.core.errors.APIUsageError: actions must be in [0, 2) for Discrete(2), got 2
    """
    array = np.asarray(actions)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
                raise APIUsageError(
                    f"actions of {space} must be whole numbers, got a {array.dtype} array with "
                    "fractional or non-finite values"
                )
        elif array.dtype.kind not in "iub":
            raise APIUsageError(f"actions of {space} must be integers, got dtype {array.dtype}")
        if array.size == 0:
            return
        if isinstance(space, spaces.Discrete):
            low, end = int(space.start), int(space.start + space.n)
            lo, hi = array.min(), array.max()
            if lo < low or hi >= end:
                bad = lo if lo < low else hi
                raise APIUsageError(
                    f"actions must be in [{low}, {end}) for {space}, got {bad.item()}"
                )
        else:
            start = np.asarray(space.start)
            if np.any(array < start) or np.any(array >= start + space.nvec):
                raise APIUsageError(f"actions out of range for {space}")
    elif isinstance(space, spaces.Box) and array.dtype.kind == "f" and np.isnan(array).any():
        raise APIUsageError(f"actions of {space} contain NaN")


@dataclass
class EnvBuffers:
    """The row buffers of an env, allocated once and written in place.

    A vectorizer allocates one ``EnvBuffers`` for all its rows (possibly in shared memory) and
    hands each env a :meth:`rows` view, so envs write straight into the batch. Besides the
    seven standard buffers it holds the env's declared extra fields (``extras``, described by
    ``extra_fields``; see :mod:`fugu.core.schema`), handled by the same loops.

    Example:
        >>> from fugu.core.schema import COSTS
        >>> b = EnvBuffers.allocate(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), 4, [COSTS])
        >>> b.observations.shape, b.actions.dtype, b.num_rows, b.extras["costs"].shape
        ((4, 3), dtype('int32'), 4, (4,))
        >>> part = b.rows(2, 4)
        >>> part.rewards[:] = 1.0
        >>> part.extras["costs"][:] = 0.5
        >>> b.rewards.tolist(), b.extras["costs"].tolist()
        ([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5])
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    masks: np.ndarray
    final_observations: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    """The extra fields' buffers, by name (``[rows, *field.shape]`` each)."""
    extra_fields: dict[str, Field] = field(default_factory=dict)
    """The declared extra fields, by name (the same keys as ``extras``)."""

    def __post_init__(self) -> None:
        if not self.extra_fields and self.extras:  # describe arrays given without fields
            self.extra_fields = {
                name: Field(name, array.shape[1:], array.dtype)
                for name, array in self.extras.items()
            }
        self.extra_fields = extra_fields_dict(self.extra_fields)
        if list(self.extras) != list(self.extra_fields):
            raise EnvContractError(
                f"EnvBuffers extras {sorted(self.extras)} do not match the extra fields "
                f"{sorted(self.extra_fields)}"
            )

    @property
    def num_rows(self) -> int:
        """Number of rows (agents) the buffers hold."""
        return int(self.rewards.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every buffer by field name: the standard ones, then the extras (no copy)."""
        arrays = {name: getattr(self, name) for name in STANDARD_FIELD_NAMES}
        arrays.update(self.extras)
        return arrays

    @classmethod
    def from_arrays(
        cls, fields: Iterable[Field] | Mapping[str, Field], arrays: Mapping[str, np.ndarray]
    ) -> EnvBuffers:
        """Buffers from one array per field (a schema from :func:`fugu.core.schema.schema`).

        Standard fields are recognised by name; every other field is an extra. Arrays are
        adopted as they are (no copy), which is how a backend puts buffers in shared memory.

        Example:
            >>> from fugu.core.schema import COSTS, schema
            >>> fields = schema(spaces.Box(-1, 1, (2,)), spaces.Discrete(2), [COSTS])
            >>> b = EnvBuffers.from_arrays(fields, {n: f.allocate(3) for n, f in fields.items()})
            >>> b.masks.tolist(), list(b.extras)
            ([True, True, True], ['costs'])
        """
        items = fields.values() if isinstance(fields, Mapping) else fields
        extra_fields = {f.name: f for f in items if f.name not in STANDARD_FIELD_NAMES}
        missing = [n for n in (*STANDARD_FIELD_NAMES, *extra_fields) if n not in arrays]
        if missing:
            raise EnvContractError(f"EnvBuffers.from_arrays: no array for fields {missing}")
        return cls(
            **{name: arrays[name] for name in STANDARD_FIELD_NAMES},
            extras={name: arrays[name] for name in extra_fields},
            extra_fields=extra_fields,
        )

    @staticmethod
    def layout(
        observation_space: spaces.Space,
        action_space: spaces.Space,
        num_rows: int,
        extra_fields: Iterable[Field] | Mapping[str, Field] = (),
    ) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Shapes and dtypes of every buffer, extras included, by field name, for ``num_rows``.

        Example:
            >>> EnvBuffers.layout(spaces.Box(0, 1, (2,)), spaces.Discrete(3), 5)["actions"]
            ((5,), dtype('int32'))
        """
        fields = schema(observation_space, action_space, extra_fields)
        return {name: (f.row_shape(num_rows), f.dtype) for name, f in fields.items()}

    @classmethod
    def allocate(
        cls,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        num_rows: int,
        extra_fields: Iterable[Field] | Mapping[str, Field] = (),
    ) -> EnvBuffers:
        """Allocate buffers for ``num_rows`` rows, each holding its field's ``fill`` (zeros;
        masks and action masks start all-true)."""
        fields = schema(observation_space, action_space, extra_fields)
        return cls.from_arrays(fields, {name: f.allocate(num_rows) for name, f in fields.items()})

    def rows(self, start: int, stop: int) -> EnvBuffers:
        """Views of rows ``[start, stop)`` of every buffer, extras included (no copy)."""
        return EnvBuffers(
            **{name: getattr(self, name)[start:stop] for name in STANDARD_FIELD_NAMES},
            extras={name: array[start:stop] for name, array in self.extras.items()},
            extra_fields=self.extra_fields,
        )

    def check(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        num_rows: int,
        extra_fields: Iterable[Field] | Mapping[str, Field] = (),
    ) -> None:
        """Raise :class:`EnvContractError` unless every buffer, extras included, has the layout
        of the spaces and the declared extra fields (and no undeclared extra is present)."""
        fields = schema(observation_space, action_space, extra_fields)
        declared = [name for name in fields if name not in STANDARD_FIELD_NAMES]
        if sorted(declared) != sorted(self.extras):
            raise EnvContractError(
                f"the buffers carry extra fields {sorted(self.extras)} but the env declares "
                f"{sorted(declared)}; a vectorizer must allocate the extra_fields of the env "
                "it builds (see fugu.vector.base.probe_env)"
            )
        arrays = self.arrays()
        for name, f in fields.items():
            check_array(f, arrays[name], num_rows)


def batched_space(space: spaces.Space, rows: int) -> spaces.Space:
    """``space`` for ``rows`` rows at once: a Box of shape ``[rows, *shape]``, or a
    MultiDiscrete for Discrete/MultiDiscrete rows.

    Example:
        >>> batched_space(spaces.Discrete(3), 2)
        MultiDiscrete([3 3])
        >>> batched_space(spaces.Box(-1.0, 1.0, (2,)), 4).shape
        (4, 2)
    """
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(space.low, (rows, *space.shape))
        high = np.broadcast_to(space.high, (rows, *space.shape))
        return spaces.Box(low, high, dtype=space.dtype)  # type: ignore[arg-type]
    if isinstance(space, spaces.Discrete):
        return spaces.MultiDiscrete(
            np.full(rows, space.n, dtype=np.int64), start=np.full(rows, space.start)
        )
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.broadcast_to(space.nvec, (rows, *space.nvec.shape))
        start = np.broadcast_to(space.start, (rows, *space.nvec.shape))
        return spaces.MultiDiscrete(nvec.copy(), start=start.copy())
    raise EnvContractError(f"cannot batch a {type(space).__name__} space")


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
        extra_fields: The env's extra per-row buffers (see :mod:`fugu.core.schema`). Each is
            allocated with the standard ones (or checked in adopted ``buffers``) and exposed in
            :attr:`extras` and as an attribute of its name (``env.costs``).

    Attributes:
        extra_fields: The declared extra fields by name.
        extras: The extra fields' buffers by name (``[num_agents, *shape]``), written in
            place by the env.

    Example:
        >>> from fugu.core.schema import COSTS
        >>> env = PufferEnv(spaces.Box(-1, 1, (2,)), spaces.Discrete(2), 3, extra_fields=[COSTS])
        >>> env.costs is env.extras["costs"], env.costs.dtype, list(env.extra_fields)
        (True, dtype('float32'), ['costs'])
    """

    render_mode: str | None = None
    """``"rgb_array"`` for envs that implement :meth:`render` (set by the base), as Gymnasium's
    ``RecordVideo`` and SB3's ``VecVideoRecorder`` expect; ``None`` otherwise."""
    check_actions: bool = True
    """Check actions passed to ``step`` (one vectorized pass over the batch: out-of-range or
    fractional discrete actions, NaN Box actions raise). Set it to ``False`` on an env (or a
    subclass) to skip the check; the trainer writes the action buffer in place and skips it."""

    def __init__(
        self,
        single_observation_space: spaces.Space,
        single_action_space: spaces.Space,
        num_agents: int,
        buffers: EnvBuffers | None = None,
        extra_fields: Iterable[Field] | Mapping[str, Field] = (),
    ) -> None:
        if int(num_agents) < 1:
            raise EnvContractError(f"num_agents must be >= 1, got {num_agents}")
        check_single_spaces(single_observation_space, single_action_space)
        self.single_observation_space: spaces.Box = single_observation_space  # type: ignore[assignment]
        self.single_action_space: spaces.Space = single_action_space
        self.num_agents = int(num_agents)
        declared = extra_fields_dict(extra_fields)
        if buffers is None:
            buffers = EnvBuffers.allocate(
                single_observation_space, single_action_space, num_agents, declared
            )
        else:
            buffers.check(single_observation_space, single_action_space, self.num_agents, declared)
        self.buffers = buffers
        self.extra_fields: dict[str, Field] = declared
        self.extras: dict[str, np.ndarray] = {name: buffers.extras[name] for name in declared}
        for name, array in self.extras.items():
            setattr(self, name, array)
        self.observations = buffers.observations
        self.actions = buffers.actions
        self.rewards = buffers.rewards
        self.terminals = buffers.terminals
        self.truncations = buffers.truncations
        self.masks = buffers.masks
        self.final_observations = buffers.final_observations
        if self.render_mode is None and type(self).render is not PufferEnv.render:
            self.render_mode = "rgb_array"
        self.closed = False
        self._awaiting: str | None = None  # "reset" or "step" between send and recv
        self._started = False  # async_reset() has been called
        self._pending_infos: Infos = []
        self._env_ids = np.arange(self.num_agents, dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_envs={self.num_agents}, "
            f"single_observation_space={self.single_observation_space}, "
            f"single_action_space={self.single_action_space})"
        )

    @property
    def observation_space(self) -> spaces.Space:
        """Every row's observation as one space, as Gymnasium's vector envs have it
        (``sample()`` gives ``[num_envs, *obs_shape]``)."""
        space = self.__dict__.get("_batched_observation_space")
        if space is None:
            space = batched_space(self.single_observation_space, self.num_agents)
            self._batched_observation_space = space
        return space

    @observation_space.setter
    def observation_space(self, space: spaces.Space) -> None:
        self._batched_observation_space = space

    @property
    def action_space(self) -> spaces.Space:
        """Every row's action as one space (``sample()`` gives a valid ``actions`` batch)."""
        space = self.__dict__.get("_batched_action_space")
        if space is None:
            space = batched_space(self.single_action_space, self.num_agents)
            self._batched_action_space = space
        return space

    @action_space.setter
    def action_space(self, space: spaces.Space) -> None:
        self._batched_action_space = space

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
        """Copy ``actions`` into the action buffer (see :func:`write_actions`), checking them
        against the action space first unless :attr:`check_actions` is false (actions written
        into the buffer itself, as the trainer does, are never checked)."""
        if self.check_actions and actions is not self.actions:
            check_action_values(self.single_action_space, actions)
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
            self.extras,
        )
