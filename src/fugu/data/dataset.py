"""A static trajectory dataset on the data plane's fields, stored as memory-mapped ``.npy`` files.

Transitions are kept episode after episode, one array per field: ``observations [N, *obs]``,
``actions [N, *act]``, ``rewards [N]``, ``terminals [N]``, ``truncations [N]`` and any declared
extra field (``action_masks``, ``costs``, ...), plus ``episode_starts [E + 1]`` (offsets of the
episodes; the last is ``N``) and ``final_observations [E, *obs]`` (the observation after each
episode's last step, so a dataset converts to and from Minari losslessly). Return-to-go and
timestep arrays are derived from the rewards and the episode index.

On disk a dataset is a directory: ``metadata.json`` and one ``<field>.npy`` per array, opened
with ``mmap_mode="r"`` so a large dataset costs no memory until sampled.

Example:
    >>> import numpy as np
    >>> data = TrajectoryDataset.from_episodes([
    ...     {"observations": np.zeros((3, 2), np.float32), "actions": np.zeros(3, np.int64),
    ...      "rewards": np.array([1.0, 0.0, 2.0], np.float32)},
    ...     {"observations": np.ones((2, 2), np.float32), "actions": np.ones(2, np.int64),
    ...      "rewards": np.array([5.0, 5.0], np.float32)},
    ... ])
    >>> data.num_episodes, data.num_transitions, data.episode_returns.tolist()
    (2, 5, [3.0, 10.0])
    >>> data.returns_to_go().tolist(), data.timesteps().tolist()
    ([3.0, 2.0, 2.0, 10.0, 5.0], [0, 1, 2, 0, 1])
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.errors import APIUsageError, FuguError

__all__ = [
    "DATASET_FORMAT_VERSION",
    "DatasetError",
    "DatasetMetadata",
    "TrajectoryDataset",
    "episode_timesteps",
    "returns_to_go",
    "space_from_dict",
    "space_to_dict",
]

DATASET_FORMAT_VERSION = 1
"""Version of the on-disk layout (``metadata.json`` says which one wrote it)."""

_CORE_FIELDS = ("observations", "actions", "rewards", "terminals", "truncations")
_INDEX_FIELDS = ("episode_starts", "final_observations")


class DatasetError(FuguError, ValueError):
    """A dataset path that does not exist, is not a dataset, or holds inconsistent arrays."""


def returns_to_go(
    rewards: np.ndarray, episode_starts: np.ndarray, gamma: float = 1.0
) -> np.ndarray:
    """The (discounted) sum of each step's reward and all later rewards of its episode.

    Args:
        rewards: ``[N]`` rewards, episode after episode.
        episode_starts: ``[E + 1]`` episode offsets (the last one is ``N``).
        gamma: Discount (1: the undiscounted return-to-go of the Decision Transformer).

    Returns:
        ``[N]`` float64 returns-to-go.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    starts = np.asarray(episode_starts, dtype=np.int64)
    if gamma == 1.0:  # suffix sums over the whole array, minus the part after each episode
        suffix = np.zeros(rewards.shape[0] + 1, dtype=np.float64)
        suffix[:-1] = np.cumsum(rewards[::-1])[::-1]
        ends = np.repeat(starts[1:], np.diff(starts))
        return suffix[:-1] - suffix[ends]
    out = np.empty_like(rewards)
    for lo, hi in itertools.pairwise(starts):
        running = 0.0
        for t in range(hi - 1, lo - 1, -1):
            running = rewards[t] + gamma * running
            out[t] = running
    return out


def episode_timesteps(episode_starts: np.ndarray) -> np.ndarray:
    """``[N]`` int64: each step's index within its episode (0 at every episode start)."""
    starts = np.asarray(episode_starts, dtype=np.int64)
    lengths = np.diff(starts)
    return np.arange(int(starts[-1]), dtype=np.int64) - np.repeat(starts[:-1], lengths)


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A JSON-able description of a Box, Discrete or MultiDiscrete space."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist()}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": np.asarray(space.low, dtype=np.float64).tolist(),
            "high": np.asarray(space.high, dtype=np.float64).tolist(),
        }
    raise APIUsageError(f"datasets store Box, Discrete or MultiDiscrete spaces, got {space}")


def space_from_dict(data: Mapping[str, Any]) -> spaces.Space:
    """The space :func:`space_to_dict` described."""
    kind = data.get("type")
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.asarray(data["nvec"], dtype=np.int64))
    if kind == "Box":
        dtype = np.dtype(data.get("dtype", "float32"))
        shape = tuple(int(s) for s in data["shape"])
        low = np.asarray(data["low"], dtype=np.float64).astype(dtype).reshape(shape)
        high = np.asarray(data["high"], dtype=np.float64).astype(dtype).reshape(shape)
        return spaces.Box(low, high, shape, dtype)
    raise DatasetError(f"unknown space description {dict(data)!r}")


@dataclass
class DatasetMetadata:
    """What a dataset says about itself (``metadata.json``).

    Attributes:
        env_id: The env it was collected on (``cartpole-v1``).
        policy: The collecting policy: a checkpoint path, ``random``, or a mixture's parts.
        observation_space: :func:`space_to_dict` of the single observation space.
        action_space: :func:`space_to_dict` of the single action space.
        extras: Names of the declared extra fields stored beside the standard ones.
        composition: Free-form notes on how it was made (sources and their episode counts).
    """

    env_id: str = ""
    policy: str = ""
    observation_space: dict[str, Any] | None = None
    action_space: dict[str, Any] | None = None
    extras: list[str] = field(default_factory=list)
    composition: dict[str, Any] = field(default_factory=dict)

    @property
    def env_version(self) -> int | None:
        """The ``-vN`` of :attr:`env_id` (``None`` when unversioned)."""
        match = re.search(r"-v(\d+)$", self.env_id)
        return int(match.group(1)) if match else None


class TrajectoryDataset:
    """Episodes of transitions, one array per field, with an episode index.

    Build one with :meth:`from_episodes` (or :class:`~fugu.data.EpisodeRecorder` while
    stepping a vec env), save it with :meth:`save`, open it with :meth:`load` (memory-mapped).

    Args:
        arrays: ``observations``, ``actions``, ``rewards``, ``terminals``, ``truncations``,
            extras (all ``[N, ...]``), ``episode_starts [E + 1]``, ``final_observations``.
        metadata: :class:`DatasetMetadata`.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], metadata: DatasetMetadata) -> None:
        missing = [n for n in (*_CORE_FIELDS, *_INDEX_FIELDS) if n not in arrays]
        if missing:
            raise DatasetError(f"dataset is missing the arrays {missing}")
        self.arrays = dict(arrays)
        self.metadata = metadata
        starts = self.arrays["episode_starts"]
        n = int(self.arrays["rewards"].shape[0])
        if starts.ndim != 1 or starts.shape[0] < 1 or starts[0] != 0 or starts[-1] != n:
            raise DatasetError(
                f"episode_starts must run from 0 to the {n} transitions, got {starts[:3]}..."
            )
        if np.any(np.diff(starts) < 1):
            raise DatasetError("every episode must hold at least one transition")
        for name, array in self.arrays.items():
            if name not in _INDEX_FIELDS and array.shape[0] != n:
                raise DatasetError(f"{name} has {array.shape[0]} rows, rewards {n}")
        if self.arrays["final_observations"].shape[0] != self.num_episodes:
            raise DatasetError("final_observations needs one row per episode")
        self._rtg: np.ndarray | None = None
        self._timesteps: np.ndarray | None = None
        self._episode_ids: np.ndarray | None = None

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_episodes(
        cls,
        episodes: Sequence[Mapping[str, np.ndarray]],
        metadata: DatasetMetadata | None = None,
    ) -> TrajectoryDataset:
        """A dataset of whole episodes, each a mapping of ``[T, ...]`` arrays.

        An episode needs ``observations``, ``actions`` and ``rewards``; ``terminals`` and
        ``truncations`` default to a terminal last step; ``final_observation`` (one row)
        defaults to the last observation. Any other key is an extra field.
        """
        if not episodes:
            raise DatasetError("a dataset needs at least one episode")
        lengths = [int(np.asarray(ep["rewards"]).shape[0]) for ep in episodes]
        names = [n for n in episodes[0] if n != "final_observation"]
        for n in ("terminals", "truncations"):
            if n not in names:
                names.append(n)
        arrays: dict[str, np.ndarray] = {}
        for name in names:
            parts = []
            for ep, length in zip(episodes, lengths):
                if name in ep:
                    parts.append(np.asarray(ep[name]))
                else:
                    flags = np.zeros(length, dtype=bool)
                    flags[-1] = name == "terminals"
                    parts.append(flags)
            arrays[name] = np.concatenate(parts)
        for name in ("terminals", "truncations"):
            arrays[name] = arrays[name].astype(bool, copy=False)
        arrays["episode_starts"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        arrays["final_observations"] = np.stack(
            [
                np.asarray(ep.get("final_observation", np.asarray(ep["observations"])[-1]))
                for ep in episodes
            ]
        ).astype(arrays["observations"].dtype, copy=False)
        meta = DatasetMetadata(**asdict(metadata)) if metadata is not None else DatasetMetadata()
        meta.extras = [n for n in arrays if n not in (*_CORE_FIELDS, *_INDEX_FIELDS)]
        return cls(arrays, meta)

    @classmethod
    def concatenate(
        cls, datasets: Sequence[TrajectoryDataset], metadata: DatasetMetadata | None = None
    ) -> TrajectoryDataset:
        """The episodes of several datasets (same fields) in order, as one dataset."""
        if not datasets:
            raise DatasetError("nothing to concatenate")
        names = list(datasets[0].arrays)
        arrays: dict[str, np.ndarray] = {}
        for name in names:
            if name == "episode_starts":
                continue
            arrays[name] = np.concatenate([np.asarray(d.arrays[name]) for d in datasets])
        lengths = np.concatenate([d.episode_lengths for d in datasets])
        arrays["episode_starts"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(arrays, metadata or datasets[0].metadata)

    # -- views ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __len__(self) -> int:
        return self.num_transitions

    @property
    def observations(self) -> np.ndarray:
        """``[N, *obs_shape]``."""
        return self.arrays["observations"]

    @property
    def actions(self) -> np.ndarray:
        """``[N, *action_shape]``."""
        return self.arrays["actions"]

    @property
    def rewards(self) -> np.ndarray:
        """``[N]``."""
        return self.arrays["rewards"]

    @property
    def episode_starts(self) -> np.ndarray:
        """``[E + 1]`` offsets of the episodes (the last is ``N``)."""
        return self.arrays["episode_starts"]

    @property
    def extras(self) -> dict[str, np.ndarray]:
        """The declared extra fields, by name."""
        return {n: self.arrays[n] for n in self.metadata.extras}

    @property
    def num_transitions(self) -> int:
        """Transitions (steps) over all episodes."""
        return int(self.arrays["rewards"].shape[0])

    @property
    def num_episodes(self) -> int:
        """Episodes."""
        return int(self.episode_starts.shape[0] - 1)

    @property
    def episode_lengths(self) -> np.ndarray:
        """``[E]`` steps of each episode."""
        return np.diff(np.asarray(self.episode_starts))

    @property
    def episode_returns(self) -> np.ndarray:
        """``[E]`` float64 undiscounted return of each episode."""
        sums = np.concatenate([[0.0], np.cumsum(np.asarray(self.rewards, dtype=np.float64))])
        starts = np.asarray(self.episode_starts)
        return sums[starts[1:]] - sums[starts[:-1]]

    @property
    def episode_ids(self) -> np.ndarray:
        """``[N]`` int64: the episode of each transition."""
        if self._episode_ids is None:
            self._episode_ids = np.repeat(
                np.arange(self.num_episodes, dtype=np.int64), self.episode_lengths
            )
        return self._episode_ids

    def returns_to_go(self) -> np.ndarray:
        """``[N]`` float64 undiscounted return-to-go (cached)."""
        if self._rtg is None:
            self._rtg = returns_to_go(self.rewards, self.episode_starts)
        return self._rtg

    def timesteps(self) -> np.ndarray:
        """``[N]`` int64 step index within the episode (cached)."""
        if self._timesteps is None:
            self._timesteps = episode_timesteps(self.episode_starts)
        return self._timesteps

    def episode(self, index: int) -> dict[str, np.ndarray]:
        """The arrays of one episode (views), plus its ``final_observation``."""
        if not -self.num_episodes <= index < self.num_episodes:
            raise IndexError(f"episode {index} of {self.num_episodes}")
        index %= self.num_episodes
        lo, hi = int(self.episode_starts[index]), int(self.episode_starts[index + 1])
        out = {n: a[lo:hi] for n, a in self.arrays.items() if n not in _INDEX_FIELDS}
        out["final_observation"] = self.arrays["final_observations"][index]
        return out

    def select_episodes(self, indices: np.ndarray | Sequence[int]) -> TrajectoryDataset:
        """A new (in-memory) dataset of the given episodes, in the given order."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            raise DatasetError("select at least one episode")
        starts = np.asarray(self.episode_starts)
        lengths = self.episode_lengths[indices]
        rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in indices])
        arrays = {n: np.asarray(a)[rows] for n, a in self.arrays.items() if n not in _INDEX_FIELDS}
        arrays["final_observations"] = np.asarray(self.arrays["final_observations"])[indices]
        arrays["episode_starts"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return TrajectoryDataset(arrays, DatasetMetadata(**asdict(self.metadata)))

    def top_episodes(self, fraction: float) -> TrajectoryDataset:
        """The best ``fraction`` of episodes by return (at least one): %BC's training set."""
        if not 0.0 < fraction <= 1.0:
            raise APIUsageError(f"fraction must be in (0, 1], got {fraction}")
        count = max(1, round(fraction * self.num_episodes))
        order = np.argsort(-self.episode_returns, kind="stable")[:count]
        return self.select_episodes(np.sort(order))

    def summary(self) -> dict[str, float]:
        """Episodes, transitions and the returns' mean, std, min and max."""
        returns = self.episode_returns
        return {
            "num_episodes": float(self.num_episodes),
            "num_transitions": float(self.num_transitions),
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
        }

    # -- disk -----------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the dataset directory (atomically: a temp dir renamed into place)."""
        target = Path(path)
        if target.exists() and not overwrite:
            raise DatasetError(f"{target} exists (pass overwrite=True to replace it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for name, array in self.arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            meta = {
                "format": "fugu-trajectories",
                "format_version": DATASET_FORMAT_VERSION,
                **asdict(self.metadata),
                "env_version": self.metadata.env_version,
                "summary": self.summary(),
            }
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> TrajectoryDataset:
        """Open a dataset directory written by :meth:`save` (memory-mapped unless ``mmap``
        is false).

        Raises:
            DatasetError: No such directory, or not a fugu dataset (the message says which).
        """
        root = Path(path)
        if not root.exists():
            raise DatasetError(f"dataset {root}: no such file or directory")
        meta_path = root / "metadata.json"
        if not root.is_dir() or not meta_path.is_file():
            hint = ""
            if (root / "data" / "main_data.hdf5").is_file():
                hint = " (it looks like a Minari dataset: read it with fugu.data.from_minari)"
            raise DatasetError(
                f"{root} is not a fugu dataset: a dataset is a directory with a metadata.json "
                f"(write one with fugu collect){hint}"
            )
        try:
            raw = json.loads(meta_path.read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(f"{meta_path} is not valid JSON: {error}") from None
        if raw.get("format") != "fugu-trajectories":
            raise DatasetError(f"{meta_path} does not describe a fugu trajectory dataset")
        if int(raw.get("format_version", 0)) > DATASET_FORMAT_VERSION:
            raise DatasetError(
                f"{root} has format version {raw['format_version']}; this fugu reads up to "
                f"{DATASET_FORMAT_VERSION} (upgrade fugu)"
            )
        known = {f for f in DatasetMetadata.__dataclass_fields__}
        metadata = DatasetMetadata(**{k: v for k, v in raw.items() if k in known})
        arrays: dict[str, np.ndarray] = {}
        for name in (*_CORE_FIELDS, *_INDEX_FIELDS, *metadata.extras):
            file = root / f"{name}.npy"
            if not file.is_file():
                raise DatasetError(f"dataset {root} is missing {file.name}")
            arrays[name] = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
        return cls(arrays, metadata)

    def spaces(self) -> tuple[spaces.Space, spaces.Space]:
        """The single observation and action spaces recorded in the metadata."""
        if self.metadata.observation_space is None or self.metadata.action_space is None:
            raise DatasetError("this dataset records no spaces")
        return (
            space_from_dict(self.metadata.observation_space),
            space_from_dict(self.metadata.action_space),
        )
