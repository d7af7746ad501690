"""Shared surface of fugu's goal-conditioned native envs (``bitflip-v1``, ``pointgoal-v1``).

A goal-conditioned env keeps the contract's flat Box observation, laid out as three
consecutive slices ``(observation, achieved_goal, desired_goal)``. :class:`GoalLayout` names
them; :meth:`GoalLayout.split` cuts a batch of rows (any leading shape) into the three parts
without copying, and ``dict_observation_space`` describes the same data as the gymnasium
``Dict`` that Gymnasium-Robotics' goal envs use. Hindsight relabelling (HER) replaces the
``desired_goal`` slice and calls the env's vectorized ``compute_reward``.

Example:
    >>> layout = GoalLayout(observation_size=3, goal_size=2)
    >>> layout.observation, layout.achieved_goal, layout.desired_goal
    (slice(0, 3, None), slice(3, 5, None), slice(5, 7, None))
    >>> obs, achieved, desired = layout.split(np.arange(14.0).reshape(2, 7))
    >>> desired.tolist()
    [[5.0, 6.0], [12.0, 13.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

__all__ = ["GoalLayout"]

_KEYS = ("observation", "achieved_goal", "desired_goal")


@dataclass(frozen=True)
class GoalLayout:
    """Slices of a goal env's flat observation row: ``observation``, ``achieved_goal``,
    ``desired_goal``, in this order.

    Args:
        observation_size: Size of the observation part.
        goal_size: Size of each goal part (achieved and desired goals have the same size).
    """

    observation_size: int
    goal_size: int

    @property
    def observation(self) -> slice:
        """Slice of the observation part."""
        return slice(0, self.observation_size)

    @property
    def achieved_goal(self) -> slice:
        """Slice of the achieved goal."""
        return slice(self.observation_size, self.observation_size + self.goal_size)

    @property
    def desired_goal(self) -> slice:
        """Slice of the desired goal."""
        start = self.observation_size + self.goal_size
        return slice(start, start + self.goal_size)

    def __getitem__(self, key: str) -> slice:
        """The slice named ``key``: ``"observation"``, ``"achieved_goal"`` or ``"desired_goal"``.

        Example:
            >>> GoalLayout(4, 4)["desired_goal"]
            slice(8, 12, None)
        """
        if key not in _KEYS:
            raise KeyError(f"goal layout keys are {list(_KEYS)}, got {key!r}")
        return getattr(self, key)  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        """Length of a flat observation row."""
        return self.observation_size + 2 * self.goal_size

    def split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views ``(observation, achieved_goal, desired_goal)`` of rows ``[..., size]``."""
        rows = np.asarray(rows)
        if rows.shape[-1] != self.size:
            raise ValueError(
                f"goal observations must have last dimension {self.size}, got {rows.shape}"
            )
        return (
            rows[..., self.observation],
            rows[..., self.achieved_goal],
            rows[..., self.desired_goal],
        )

    def dict_space(self, flat: spaces.Box) -> spaces.Dict:
        """The gymnasium ``Dict`` space describing the slices of the flat Box ``flat``."""
        low = np.broadcast_to(flat.low, flat.shape)
        high = np.broadcast_to(flat.high, flat.shape)
        parts = {}
        for key in _KEYS:
            cut = self[key]
            parts[key] = spaces.Box(low[cut], high[cut], dtype=flat.dtype)  # type: ignore[arg-type]
        return spaces.Dict(parts)
