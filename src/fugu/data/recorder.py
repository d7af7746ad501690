"""Turn the steps of a vec env (all rows at once) into whole episodes of a dataset.

:class:`EpisodeRecorder` is fed one vec-env step at a time, with the data plane's buffers
(``observations`` the rows acted on, ``actions``, ``rewards``, ``terminals``, ``truncations``,
``final_observations`` and declared extras). When a row's episode ends, its steps become one
episode; :meth:`EpisodeRecorder.dataset` builds a :class:`~fugu.data.TrajectoryDataset` from the
finished ones. Only episodes that start after recording begins are kept whole, so every stored
episode is complete.

Example:
    >>> import numpy as np
    >>> rec = EpisodeRecorder(num_rows=2)
    >>> for t in range(3):
    ...     done = np.array([t == 1, t == 2])
    ...     _ = rec.add(np.full((2, 1), t, np.float32), np.zeros(2, np.int64), np.ones(2),
    ...             done, np.zeros(2, bool), np.full((2, 1), 9, np.float32))
    >>> rec.num_episodes, rec.dataset().episode_lengths.tolist()
    (2, [2, 3])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fugu.data.dataset import DatasetMetadata, TrajectoryDataset

__all__ = ["EpisodeRecorder"]


class EpisodeRecorder:
    """Collect finished episodes from vec-env steps (see the module docstring).

    Args:
        num_rows: Rows of the vec env.
        rows: Which rows to record (default: all; e.g. only live learner rows).
    """

    def __init__(self, num_rows: int, rows: np.ndarray | None = None) -> None:
        self.num_rows = num_rows
        self.rows = np.arange(num_rows) if rows is None else np.asarray(rows)
        self._steps: list[dict[str, np.ndarray]] = []
        self._offset = 0  # global index of self._steps[0]
        self._starts = np.zeros(num_rows, dtype=np.int64)
        self.episodes: list[dict[str, np.ndarray]] = []

    @property
    def num_episodes(self) -> int:
        """Finished episodes recorded so far."""
        return len(self.episodes)

    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminals: np.ndarray,
        truncations: np.ndarray,
        final_observations: np.ndarray,
        extras: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Record one step of every row; returns how many episodes it finished.

        ``observations`` are those the actions were taken on (copied here, so env views may
        be passed); ``final_observations`` is read only for rows that finished.
        """
        step = {
            "observations": np.array(observations, copy=True),
            "actions": np.array(actions, copy=True),
            "rewards": np.array(rewards, copy=True),
            "terminals": np.array(terminals, dtype=bool, copy=True),
            "truncations": np.array(truncations, dtype=bool, copy=True),
        }
        for name, value in (extras or {}).items():
            step[name] = np.array(value, copy=True)
        self._steps.append(step)
        now = self._offset + len(self._steps) - 1
        done = np.logical_or(step["terminals"], step["truncations"])
        finished = 0
        for row in self.rows[done[self.rows]]:
            lo = int(self._starts[row]) - self._offset
            chunk = self._steps[lo:]
            episode = {name: np.stack([s[name][row] for s in chunk]) for name in step}
            episode["final_observation"] = np.array(final_observations[row], copy=True)
            self.episodes.append(episode)
            finished += 1
        self._starts[done] = now + 1
        oldest = int(self._starts[self.rows].min()) - self._offset
        if oldest > 0:
            del self._steps[:oldest]
            self._offset += oldest
        return finished

    def discard_open(self, started: np.ndarray) -> None:
        """Treat ``started`` rows (bool ``[num_rows]``) as starting a fresh episode now (after
        a reset, or to drop steps recorded before the rows' first full episode)."""
        self._starts[np.asarray(started, dtype=bool)] = self._offset + len(self._steps)

    def dataset(
        self, metadata: DatasetMetadata | None = None, max_episodes: int | None = None
    ) -> TrajectoryDataset:
        """The finished episodes (the first ``max_episodes`` of them) as a dataset."""
        episodes = self.episodes if max_episodes is None else self.episodes[:max_episodes]
        return TrajectoryDataset.from_episodes(episodes, metadata)
