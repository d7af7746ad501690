"""The declared schema of per-row buffers: one :class:`Field` per buffer, standard or extra.

Every per-agent quantity an env produces is one row of a preallocated buffer. The seven
standard buffers (:data:`STANDARD_FIELD_NAMES`) follow from the env's spaces
(:func:`standard_fields`); an env declares any further ones (action masks, costs, roles, goals,
global state) as *extra fields* passed to :class:`fugu.core.env.PufferEnv`. Buffers, every
vectorization backend and every batch handle all fields with one loop over the schema, so a new
field travels from the env to the trainer without per-field code.

Example:
    >>> from gymnasium import spaces
    >>> masks = action_masks_field(num_logits(spaces.Discrete(7)))
    >>> masks.name, masks.shape, masks.dtype, masks.fill
    ('action_masks', (7,), dtype('bool'), True)
    >>> masks.allocate(2).shape
    (2, 7)
    >>> COSTS.allocate(3).tolist()
    [0.0, 0.0, 0.0]
    >>> sorted(standard_fields(spaces.Box(-1, 1, (3,)), spaces.Discrete(2))) == sorted(
    ...     STANDARD_FIELD_NAMES)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from numpy.typing import DTypeLike

from fugu.core.errors import EnvContractError
from fugu.core.spaces import action_dtype, action_shape, check_single_spaces

__all__ = [
    "COSTS",
    "ROLES",
    "STANDARD_FIELD_NAMES",
    "Field",
    "achieved_goals_field",
    "action_masks_field",
    "check_array",
    "extra_fields_dict",
    "global_state_field",
    "goals_field",
    "num_logits",
    "roles_field",
    "schema",
    "standard_fields",
]

STANDARD_FIELD_NAMES: tuple[str, ...] = (
    "observations",
    "actions",
    "rewards",
    "terminals",
    "truncations",
    "masks",
    "final_observations",
)
"""The buffers every env has, in buffer order; extra fields may not reuse these names."""


@dataclass(frozen=True, init=False)
class Field:
    """One per-row buffer: a name, the shape of one row, a dtype and an initial value.

    ``dtype`` accepts anything ``np.dtype`` does and is stored as an ``np.dtype``; ``shape``
    is stored as a tuple of ints. A field is immutable, hashable and picklable (it crosses into
    worker processes).

    Args:
        name: The buffer's name (a Python identifier): the key in ``extras`` and the env
            attribute that holds it.
        shape: Shape of one row (``()`` for one scalar per row).
        dtype: Dtype of the buffer.
        fill: Value the buffer holds when allocated (and before the env first writes it).
        doc: One line saying what the field holds.

    Example:
        >>> f = Field("costs", dtype="float32", doc="per-step cost")
        >>> f.dtype, f.row_shape(4)
        (dtype('float32'), (4,))
        >>> Field("goals", (2,), np.float64).allocate(3).shape
        (3, 2)
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fill: bool | int | float
    doc: str

    def __init__(
        self,
        name: str,
        shape: Sequence[int] = (),
        dtype: DTypeLike = np.float32,
        fill: bool | int | float = 0,
        doc: str = "",
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise EnvContractError(f"a field name must be a Python identifier, got {name!r}")
        try:
            dims = tuple(int(d) for d in shape)
        except TypeError:
            raise EnvContractError(
                f"field {name!r}: shape must be a tuple of ints, got {shape!r}"
            ) from None
        if any(d < 0 for d in dims):
            raise EnvContractError(f"field {name!r}: shape must not be negative, got {dims}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "shape", dims)
        object.__setattr__(self, "dtype", np.dtype(dtype))
        object.__setattr__(self, "fill", fill)
        object.__setattr__(self, "doc", str(doc))

    def row_shape(self, num_rows: int) -> tuple[int, ...]:
        """Shape of the buffer for ``num_rows`` rows: ``(num_rows, *shape)``."""
        return (int(num_rows), *self.shape)

    def allocate(self, num_rows: int) -> np.ndarray:
        """A new buffer of ``num_rows`` rows holding ``fill``."""
        return np.full(self.row_shape(num_rows), self.fill, dtype=self.dtype)

    def check(self, array: Any, num_rows: int) -> None:
        """Raise :class:`EnvContractError` unless ``array`` is this field's buffer for
        ``num_rows`` rows (see :func:`check_array`)."""
        check_array(self, array, num_rows)


def check_array(field: Field, array: Any, num_rows: int) -> None:
    """Raise :class:`EnvContractError` unless ``array`` is a numpy array with the shape and
    dtype of ``field`` for ``num_rows`` rows.

    Example:
        >>> check_array(COSTS, np.zeros(2, np.float64), 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.EnvContractError: buffer 'costs' must have shape (2,) and dtype ...
    """
    if not isinstance(array, np.ndarray):
        raise EnvContractError(f"buffer {field.name!r} must be a numpy array, got {type(array)}")
    shape = field.row_shape(num_rows)
    if array.shape != shape or array.dtype != field.dtype:
        raise EnvContractError(
            f"buffer {field.name!r} must have shape {shape} and dtype {field.dtype}, "
            f"got shape {array.shape} and dtype {array.dtype}"
        )


def num_logits(action_space: spaces.Space) -> int:
    """Number of logits of a discrete action space: ``n`` (Discrete) or ``sum(nvec)``.

    This is the width of an ``action_masks`` row.

    Example:
        >>> num_logits(spaces.Discrete(7)), num_logits(spaces.MultiDiscrete([3, 4]))
        (7, 7)
    """
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.asarray(action_space.nvec).sum())
    raise EnvContractError(
        f"action masks need a Discrete or MultiDiscrete action space, got {action_space!r}"
    )


def action_masks_field(num_logits: int) -> Field:
    """``action_masks`` bool ``[A, num_logits]``: True for the actions a row may take.

    For MultiDiscrete actions the components' choices are concatenated (``sum(nvec)``
    entries, see :func:`num_logits`). Starts all True (everything legal).
    """
    return Field(
        "action_masks",
        (int(num_logits),),
        np.bool_,
        True,
        "legal actions of the row (True: allowed), one entry per logit",
    )


COSTS = Field("costs", (), np.float32, 0.0, "per-step cost of the row (constrained RL)")
"""``costs`` float32 ``[A]``: the cost of the step, next to its reward (safe RL)."""

ROLES = Field("roles", (), np.int32, 0, "role id of the row's agent (heterogeneous agents)")
"""``roles`` int32 ``[A]``: the role (agent type) of each row."""


def roles_field() -> Field:
    """The ``roles`` field (:data:`ROLES`)."""
    return ROLES


def global_state_field(shape: Sequence[int]) -> Field:
    """``global_state`` float32 ``[A, *shape]``: the full state seen by a centralised critic."""
    return Field("global_state", shape, np.float32, 0.0, "global state for a centralised critic")


def goals_field(shape: Sequence[int]) -> Field:
    """``goals`` float32 ``[A, *shape]``: the goal a goal-conditioned row pursues."""
    return Field("goals", shape, np.float32, 0.0, "desired goal of the row")


def achieved_goals_field(shape: Sequence[int]) -> Field:
    """``achieved_goals`` float32 ``[A, *shape]``: the goal the row's state achieves."""
    return Field("achieved_goals", shape, np.float32, 0.0, "goal achieved by the row's state")


def standard_fields(
    observation_space: spaces.Space, action_space: spaces.Space
) -> dict[str, Field]:
    """The seven standard buffers of an env with these single spaces, in buffer order.

    Example:
        >>> f = standard_fields(spaces.Box(0, 1, (2,), np.uint8), spaces.Box(-1, 1, (3,)))
        >>> f["observations"].dtype, f["actions"].shape, f["masks"].fill
        (dtype('uint8'), (3,), True)
    """
    check_single_spaces(observation_space, action_space)
    obs_shape = tuple(observation_space.shape or ())
    obs_dtype = np.dtype(observation_space.dtype)
    return {
        "observations": Field("observations", obs_shape, obs_dtype, 0, "observation of the row"),
        "actions": Field(
            "actions", action_shape(action_space), action_dtype(action_space), 0, "action row"
        ),
        "rewards": Field("rewards", (), np.float32, 0.0, "reward of the last step"),
        "terminals": Field("terminals", (), np.bool_, False, "the episode ended (a death)"),
        "truncations": Field("truncations", (), np.bool_, False, "the episode was cut off"),
        "masks": Field("masks", (), np.bool_, True, "the row's agent acts on the next step"),
        "final_observations": Field(
            "final_observations", obs_shape, obs_dtype, 0, "observation that ended the episode"
        ),
    }


def extra_fields_dict(extra_fields: Iterable[Field] | Mapping[str, Field]) -> dict[str, Field]:
    """Validate declared extra fields and key them by name (declaration order kept).

    Raises:
        EnvContractError: An entry is not a :class:`Field`, two share a name, or one reuses a
            standard buffer's name.

    Example:
        >>> list(extra_fields_dict([COSTS, ROLES]))
        ['costs', 'roles']
        >>> extra_fields_dict([Field("rewards")])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.EnvContractError: extra field 'rewards' collides with the standard ...
    """
    items = extra_fields.values() if isinstance(extra_fields, Mapping) else extra_fields
    declared: dict[str, Field] = {}
    for field in items:
        if not isinstance(field, Field):
            raise EnvContractError(
                f"extra fields must be fugu.core.schema.Field objects, got {type(field).__name__}"
            )
        if field.name in STANDARD_FIELD_NAMES:
            raise EnvContractError(
                f"extra field {field.name!r} collides with the standard buffer of that name; "
                f"pick another name (standard: {', '.join(STANDARD_FIELD_NAMES)})"
            )
        if field.name in declared:
            raise EnvContractError(f"extra field {field.name!r} is declared twice")
        declared[field.name] = field
    return declared


def schema(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    extra_fields: Iterable[Field] | Mapping[str, Field] = (),
) -> dict[str, Field]:
    """Every buffer of an env: the standard fields, then the (validated) extra fields.

    Example:
        >>> list(schema(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), [COSTS]))[-2:]
        ['final_observations', 'costs']
    """
    return {
        **standard_fields(observation_space, action_space),
        **extra_fields_dict(extra_fields),
    }
