"""Read and write the Minari dataset format (``pip install 'fugu[offline]'``, ``minari[hdf5]``).

Minari keeps datasets under ``MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``), each
named ``namespace/name-vN``. :func:`to_minari` writes a :class:`~fugu.data.TrajectoryDataset`
there (observations with each episode's final one appended, as Minari stores them; extras as
per-step ``infos`` entries; the collecting policy as ``algorithm_name``) and keeps fugu's own
metadata beside it (``fugu_metadata.json``). :func:`from_minari` reads any Minari dataset with
Box/Discrete spaces back, so ``from_minari(to_minari(d))`` equals ``d``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import missing_dependency
from fugu.data.dataset import (
    DatasetError,
    DatasetMetadata,
    TrajectoryDataset,
    space_to_dict,
)

__all__ = ["from_minari", "minari_path", "to_minari"]

_META_FILE = "fugu_metadata.json"


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise missing_dependency("minari", "offline") from None
    return minari


def minari_path(dataset_id: str) -> Path:
    """The directory Minari keeps ``dataset_id`` in (under ``MINARI_DATASETS_PATH``)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path(dataset_id))


def to_minari(
    dataset: TrajectoryDataset,
    dataset_id: str,
    description: str | None = None,
    author: str = "fugu",
) -> str:
    """Write ``dataset`` as the Minari dataset ``dataset_id`` (``namespace/name-vN``).

    Returns:
        The dataset id (load it with ``minari.load_dataset``).
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    obs_space, act_space = dataset.spaces()
    buffers = []
    finals = np.asarray(dataset.arrays["final_observations"])
    for index in range(dataset.num_episodes):
        ep = dataset.episode(index)
        infos: dict[str, Any] = {}
        for name in dataset.metadata.extras:  # Minari infos have one entry per observation
            value = np.asarray(ep[name])
            infos[name] = np.concatenate([value, value[-1:]])
        buffers.append(
            EpisodeBuffer(
                id=index,
                observations=np.concatenate([np.asarray(ep["observations"]), finals[None, index]]),
                actions=np.asarray(ep["actions"]),
                rewards=np.asarray(ep["rewards"]),
                terminations=np.asarray(ep["terminals"]),
                truncations=np.asarray(ep["truncations"]),
                infos=infos or None,
            )
        )
    with warnings.catch_warnings():  # Minari nags about optional fields (permalink, email)
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            algorithm_name=dataset.metadata.policy or "unknown",
            author=author,
            author_email="n/a",
            code_permalink="n/a",
            action_space=act_space,
            observation_space=obs_space,
            description=description
            or f"{dataset.metadata.env_id} collected by {dataset.metadata.policy} (fugu)",
            data_format="hdf5",
        )
    meta = {
        "metadata": dataset.metadata.__dict__,
        "dtypes": {n: str(dataset[n].dtype) for n in ("observations", "actions", "rewards")}
        | {n: str(dataset[n].dtype) for n in dataset.metadata.extras},
    }
    (minari_path(dataset_id) / _META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return dataset_id


def from_minari(dataset_id: str) -> TrajectoryDataset:
    """Read the Minari dataset ``dataset_id`` (written by fugu or anyone) into memory.

    Raises:
        DatasetError: No such dataset, or one with spaces fugu does not store.
    """
    minari = _minari()
    try:
        data = minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError) as error:
        raise DatasetError(f"cannot load Minari dataset {dataset_id!r}: {error}") from None
    meta_file = minari_path(dataset_id) / _META_FILE
    saved = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    if saved:
        metadata = DatasetMetadata(**saved["metadata"])
        dtypes = saved.get("dtypes", {})
    else:
        env_spec = data.spec.env_spec
        metadata = DatasetMetadata(
            env_id=env_spec.id if env_spec is not None else "",
            policy=str(data.spec.algorithm_name or ""),
            observation_space=space_to_dict(data.spec.observation_space),
            action_space=space_to_dict(data.spec.action_space),
        )
        dtypes = {}
    episodes = []
    for ep in data.iterate_episodes():
        obs = np.asarray(ep.observations)
        episode: dict[str, np.ndarray] = {
            "observations": obs[:-1],
            "actions": np.asarray(ep.actions),
            "rewards": np.asarray(ep.rewards),
            "terminals": np.asarray(ep.terminations, dtype=bool),
            "truncations": np.asarray(ep.truncations, dtype=bool),
            "final_observation": obs[-1],
        }
        for name in metadata.extras:
            episode[name] = np.asarray(ep.infos[name])[:-1]
        for name, dtype in dtypes.items():
            if name in episode:
                episode[name] = episode[name].astype(dtype, copy=False)
        episodes.append(episode)
    if not episodes:
        raise DatasetError(f"Minari dataset {dataset_id!r} holds no episodes")
    return TrajectoryDataset.from_episodes(episodes, metadata)
