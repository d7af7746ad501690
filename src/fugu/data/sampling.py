"""Context windows of a :class:`~fugu.data.TrajectoryDataset`: what a sequence model trains on.

:func:`sample_windows` draws ``batch_size`` windows of ``context_length`` consecutive steps of
one episode each. A window ends at a transition drawn uniformly from the whole dataset (so every
step is the last, most-conditioned position equally often) and reaches back at most to its
episode's first step; a window shorter than ``context_length`` is left-padded with zeros and
``masks`` false on the padding. Windows never cross episodes.

Example:
    >>> import numpy as np
    >>> from fugu.data.dataset import TrajectoryDataset
    >>> def episode(n):
    ...     return {"observations": np.zeros((n, 1)), "actions": np.zeros(n), "rewards": np.ones(n)}
    >>> data = TrajectoryDataset.from_episodes([episode(3), episode(2)])
    >>> w = sample_windows(data, 4, 3, np.random.default_rng(0))
    >>> w["observations"].shape, w["masks"].shape, w["returns_to_go"].dtype
    ((4, 3, 1), (4, 3), dtype('float32'))
"""

from __future__ import annotations

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.data.dataset import TrajectoryDataset

__all__ = ["WINDOW_FIELDS", "sample_windows", "window_indices"]

WINDOW_FIELDS = ("observations", "actions", "rewards", "returns_to_go", "timesteps", "masks")
"""The arrays :func:`sample_windows` returns (plus any extras asked for)."""


def window_indices(
    episode_starts: np.ndarray, episode_ids: np.ndarray, ends: np.ndarray, context_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Transition indices ``[B, K]`` of the windows ending at ``ends`` and their validity.

    Positions before an episode's first step are invalid (``masks`` false) and point at the
    episode's first step (any in-range index would do: they are zeroed).
    """
    offsets = np.arange(context_length, dtype=np.int64) - (context_length - 1)
    positions = ends[:, None] + offsets[None, :]
    first = np.asarray(episode_starts)[np.asarray(episode_ids)[ends]][:, None]
    valid = positions >= first
    return np.where(valid, positions, first), valid


def sample_windows(
    dataset: TrajectoryDataset,
    batch_size: int,
    context_length: int,
    generator: np.random.Generator,
    extras: tuple[str, ...] = (),
    rtg_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """``batch_size`` context windows of ``context_length`` steps (see the module docstring).

    Args:
        dataset: The dataset.
        batch_size: Windows.
        context_length: Steps per window.
        generator: The seeded generator that picks the windows.
        extras: Extra fields to gather too.
        rtg_scale: Returns-to-go are divided by it.

    Returns:
        ``observations [B, K, *obs]``, ``actions [B, K, *act]``, ``rewards [B, K]``,
        ``returns_to_go [B, K]`` float32, ``timesteps [B, K]`` int64 and ``masks [B, K]`` bool,
        padded positions zeroed.
    """
    if batch_size < 1 or context_length < 1:
        raise APIUsageError("batch_size and context_length must be >= 1")
    ends = generator.integers(0, dataset.num_transitions, size=batch_size)
    index, valid = window_indices(dataset.episode_starts, dataset.episode_ids, ends, context_length)
    out: dict[str, np.ndarray] = {}
    for name in ("observations", "actions", "rewards", *extras):
        out[name] = _gather(dataset[name], index, valid)
    rtg = dataset.returns_to_go()[index] / rtg_scale
    out["returns_to_go"] = np.where(valid, rtg, 0.0).astype(np.float32)
    out["timesteps"] = np.where(valid, dataset.timesteps()[index], 0)
    out["masks"] = valid
    return out


def _gather(array: np.ndarray, index: np.ndarray, valid: np.ndarray) -> np.ndarray:
    values = np.asarray(array[index.reshape(-1)]).reshape(*index.shape, *array.shape[1:])
    shape = valid.shape + (1,) * (values.ndim - 2)
    return np.where(valid.reshape(shape), values, np.zeros((), dtype=values.dtype))
