"""Space helpers shared by the env contract, emulation and vectorization (numpy only)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from fugu.core.errors import EnvContractError

__all__ = ["action_dtype", "action_shape", "check_single_spaces", "joint_space"]


def action_shape(space: spaces.Space) -> tuple[int, ...]:
    """Shape of one row of the action buffer for a single-agent action space.

    Args:
        space: A ``Discrete``, ``MultiDiscrete`` or ``Box`` space.

    Returns:
        ``()`` for Discrete, ``(n,)`` for MultiDiscrete, the box shape for Box.

    Example:
        >>> action_shape(spaces.MultiDiscrete([3, 4]))
        (2,)
    """
    if isinstance(space, spaces.Discrete):
        return ()
    if isinstance(space, spaces.MultiDiscrete):
        return (int(np.prod(space.nvec.shape)),)
    if isinstance(space, spaces.Box):
        return tuple(space.shape)
    raise EnvContractError(
        f"single_action_space must be Discrete, MultiDiscrete or Box, got {space!r}; "
        "wrap structured action spaces with fugu.core.emulation"
    )


def action_dtype(space: spaces.Space) -> np.dtype:
    """Dtype of the action buffer: int32 for discrete spaces, float32 for Box.

    Example:
        >>> action_dtype(spaces.Discrete(2))
        dtype('int32')
    """
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return np.dtype(np.int32)
    if isinstance(space, spaces.Box):
        return np.dtype(np.float32)
    raise EnvContractError(
        f"single_action_space must be Discrete, MultiDiscrete or Box, got {space!r}"
    )


def check_single_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise :class:`EnvContractError` unless the spaces are ones the contract allows.

    The observation space must be a ``Box``; the action space ``Discrete``, ``MultiDiscrete``
    or ``Box``. Nested spaces are the job of :mod:`fugu.core.emulation`.

    Example:
        >>> check_single_spaces(spaces.Box(-1, 1, (3,)), spaces.Discrete(2))
        >>> check_single_spaces(spaces.Discrete(3), spaces.Discrete(2))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fugu.core.errors.EnvContractError: single_observation_space must be a Box, ...
    """
    if not isinstance(observation_space, spaces.Box):
        raise EnvContractError(
            f"single_observation_space must be a Box, got {observation_space!r}; "
            "wrap structured observation spaces with fugu.core.emulation"
        )
    action_shape(action_space)


def joint_space(space: spaces.Space, num_rows: int) -> spaces.Space:
    """The batched space of ``num_rows`` rows of a single space (observation or action).

    Example:
        >>> joint_space(spaces.Discrete(3), 4)
        MultiDiscrete([3 3 3 3])
    """
    if isinstance(space, spaces.Discrete):
        return spaces.MultiDiscrete(np.full(num_rows, space.n, dtype=np.int64))
    if isinstance(space, spaces.MultiDiscrete):
        return spaces.MultiDiscrete(np.broadcast_to(space.nvec, (num_rows, *space.nvec.shape)))
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(space.low, (num_rows, *space.shape))
        high = np.broadcast_to(space.high, (num_rows, *space.shape))
        return spaces.Box(low, high, dtype=space.dtype)  # type: ignore[arg-type]
    raise EnvContractError(f"cannot batch space {space!r}")
