"""Helpers shared by the outward bridges: checking the env, seeds, per-row episode statistics.

fugu envs report aggregated episode statistics; libraries such as Gymnasium's vector API and
Stable-Baselines3 expect them per row. :class:`EpisodeTracker` keeps the running return and
length of every row so the bridges can report each finished episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.core.vec import VecEnv

__all__ = ["EpisodeTracker", "check_vec_env", "fugu_seed"]


def check_vec_env(env: Any) -> VecEnv:
    """Return ``env`` if it follows fugu's :class:`~fugu.core.vec.VecEnv` protocol, else raise.

    Args:
        env: A :class:`~fugu.core.env.PufferEnv` or a vectorizer from :mod:`fugu.vector`.

    Raises:
        APIUsageError: ``env`` is not a fugu vec env (for example a plain Gymnasium env).
    """
    if not isinstance(env, VecEnv):
        raise APIUsageError(
            f"expected a fugu VecEnv (any PufferEnv or fugu.vector backend), got "
            f"{type(env).__name__}; wrap Gymnasium envs first with fugu.make(id) or "
            "fugu.core.emulation"
        )
    return env


def fugu_seed(seed: int | Sequence[int | None] | None, num_rows: int) -> int | list[int] | None:
    """Translate a per-row seed list (Gymnasium, SB3) into what a fugu env's ``reset`` takes.

    fugu envs seed row ``i`` with ``seed + i``, as Gymnasium and SB3 do, so a list of
    consecutive seeds collapses to its first element.

    Args:
        seed: ``None``, one int, or one seed (or ``None``) per row.
        num_rows: Rows of the env.

    Returns:
        ``None``, an int, or a list of ints (one per row).

    Raises:
        APIUsageError: the list has the wrong length or mixes ints and ``None``.

    Example:
        >>> fugu_seed([7, 8, 9], 3), fugu_seed([None, None], 2), fugu_seed([3, 1], 2)
        (7, None, [3, 1])
    """
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    seeds = list(seed)
    if len(seeds) != num_rows:
        raise APIUsageError(f"pass one seed per row: got {len(seeds)} seeds for {num_rows} rows")
    if all(s is None for s in seeds):
        return None
    if any(s is None for s in seeds):
        raise APIUsageError(
            "fugu envs reset every row together: pass an int, None, or one int per row, "
            "not a list mixing ints and None"
        )
    ints = [int(s) for s in seeds if s is not None]
    if ints == list(range(ints[0], ints[0] + num_rows)):
        return ints[0]
    return ints


class EpisodeTracker:
    """Running return and length of every row, reporting each episode when it ends.

    Lengths count the steps a row was live (its mask was true when it acted), so a masked row
    that never acted reports no episode.

    Args:
        num_rows: Rows of the env.

    Example:
        >>> t = EpisodeTracker(2)
        >>> t.reset(np.array([True, True]))
        >>> _ = t.update(np.array([1.0, 2.0]), np.array([False, False]), np.array([True, True]))
        >>> ended = t.update(np.array([1.0, 2.0]), np.array([True, False]), np.array([True, True]))
        >>> ended.tolist(), t.last_returns.tolist(), t.last_lengths.tolist(), t.returns.tolist()
        ([True, False], [2.0, 0.0], [2, 0], [0.0, 4.0])
    """

    def __init__(self, num_rows: int) -> None:
        self.returns = np.zeros(num_rows, dtype=np.float64)
        self.lengths = np.zeros(num_rows, dtype=np.int64)
        self.last_returns = np.zeros(num_rows, dtype=np.float64)
        self.last_lengths = np.zeros(num_rows, dtype=np.int64)
        self._live = np.ones(num_rows, dtype=np.bool_)

    def reset(self, masks: np.ndarray) -> None:
        """Start new episodes on every row; ``masks`` flags the rows that are live."""
        self.returns[:] = 0.0
        self.lengths[:] = 0
        self._live[:] = masks

    def update(self, rewards: np.ndarray, ended: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Add one step and return the rows whose (non-empty) episode ended on it.

        For those rows, :attr:`last_returns` and :attr:`last_lengths` hold the finished
        episode's return and length; their running statistics restart at zero.

        Args:
            rewards: Rewards of the step, one per row.
            ended: Rows whose episode terminated or was truncated on the step.
            masks: Rows live after the step (they act on the next step).
        """
        self.returns += np.where(self._live, rewards, 0.0)
        self.lengths += self._live
        report = ended & (self.lengths > 0)
        self.last_returns[report] = self.returns[report]
        self.last_lengths[report] = self.lengths[report]
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        self._live[:] = masks
        return report  # type: ignore[no-any-return]
