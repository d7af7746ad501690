"""Static trajectory datasets for offline RL: storage, sampling, recording and Minari interchange.

* :class:`TrajectoryDataset`: episodes of the data plane's fields, memory-mapped ``.npy`` files,
  with an episode index, return-to-go and timestep arrays (:mod:`fugu.data.dataset`);
* :func:`sample_windows`: context windows that never cross episodes (:mod:`fugu.data.sampling`);
* :class:`EpisodeRecorder`: whole episodes from vec-env steps (:mod:`fugu.data.recorder`);
* :func:`to_minari` / :func:`from_minari`: the Minari format (:mod:`fugu.data.minari_io`,
  imported lazily: it needs the ``offline`` extra).

numpy only (no torch): the sequence models in :mod:`fugu.algos` turn windows into tensors.
"""

from __future__ import annotations

from typing import Any

from fugu.data.dataset import (
    DatasetError,
    DatasetMetadata,
    TrajectoryDataset,
    episode_timesteps,
    returns_to_go,
    space_from_dict,
    space_to_dict,
)
from fugu.data.recorder import EpisodeRecorder
from fugu.data.sampling import sample_windows, window_indices

__all__ = [
    "DatasetError",
    "DatasetMetadata",
    "EpisodeRecorder",
    "TrajectoryDataset",
    "episode_timesteps",
    "from_minari",
    "returns_to_go",
    "sample_windows",
    "space_from_dict",
    "space_to_dict",
    "to_minari",
    "window_indices",
]


def __getattr__(name: str) -> Any:
    if name in ("to_minari", "from_minari"):
        from fugu.data import minari_io

        return getattr(minari_io, name)
    raise AttributeError(f"module 'fugu.data' has no attribute {name!r}")
