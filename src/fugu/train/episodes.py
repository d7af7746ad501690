"""Exact episode returns and lengths, counted by the trainer from the rewards it collects.

Envs report aggregated episode statistics (a mean over many episodes), which cannot give the
mean of exactly the last 100 episodes. :class:`EpisodeTracker` sums each row's rewards itself,
once per rollout (one small numba kernel over the ``[T, N]`` rewards), and keeps the most
recent episodes in finishing order, so solve detection is exact.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from numba import njit
from torch import Tensor

__all__ = ["EpisodeTracker", "ScoreWindow", "add_infos"]


def add_infos(infos: list[dict[str, Any]], sums: dict[str, float]) -> int:
    """Add the envs' aggregated infos into ``sums``, each weighted by its ``num_episodes``;
    returns the number of episodes they cover.

    Example:
        >>> sums = {}
        >>> add_infos([{"episode_return": 2.0, "num_episodes": 3}, {"episode_return": 6.0}], sums)
        4
        >>> sums["episode_return"] / 4
        3.0
    """
    count = 0
    for info in infos:
        n = int(info.get("num_episodes", 1))
        if n <= 0:
            continue
        count += n
        for key, value in info.items():
            if key != "num_episodes" and isinstance(value, (int, float)):
                sums[key] = sums.get(key, 0.0) + float(value) * n
    return count


class ScoreWindow:
    """The mean of an episode score the envs report in their infos (``success``, ``win``, ...)
    over at least the last ``window`` episodes, from each epoch's aggregated infos.

    Envs report scores as means over many episodes, so the window is made of whole epochs:
    the newest epochs that together hold ``window`` episodes or more.

    Example:
        >>> scores = ScoreWindow("success", window=4)
        >>> scores.add({"env/success": 0.5, "env/num_episodes": 2.0})
        >>> scores.full, scores.mean()
        (False, 0.5)
        >>> scores.add({"env/success": 1.0, "env/num_episodes": 3.0})
        >>> scores.add({"env/success": 1.0, "env/num_episodes": 2.0})  # the first epoch drops
        >>> scores.full, scores.mean()
        (True, 1.0)
    """

    def __init__(self, key: str, window: int = 100) -> None:
        self.key = key
        self.window = window
        self._epochs: deque[tuple[float, float]] = deque()  # (score sum, episodes) per epoch
        self._episodes = 0.0

    def add(self, metrics: dict[str, float]) -> None:
        """Take one epoch's ``env/<key>`` and ``env/num_episodes`` (no episodes: no change)."""
        value = metrics.get(f"env/{self.key}")
        count = float(metrics.get("env/num_episodes", 0.0))
        if value is None or count <= 0 or not np.isfinite(value):
            return
        self._epochs.append((float(value) * count, count))
        self._episodes += count
        while self._episodes - self._epochs[0][1] >= self.window:
            self._episodes -= self._epochs.popleft()[1]

    @property
    def full(self) -> bool:
        """Whether the window holds at least ``window`` episodes."""
        return self._episodes >= self.window

    def mean(self) -> float:
        """The episode-weighted mean score of the window (NaN before any episode)."""
        if not self._epochs:
            return float("nan")
        return sum(total for total, _ in self._epochs) / self._episodes


@njit(cache=True, nogil=True)
def _accumulate_episodes(
    rewards: np.ndarray,
    dones: np.ndarray,
    running_return: np.ndarray,
    running_length: np.ndarray,
    out_returns: np.ndarray,
    out_lengths: np.ndarray,
) -> int:  # pragma: no cover - numba
    """Add ``[T, N]`` rewards to the running sums; write ended episodes in finishing order
    (by step, then row) to ``out_*`` and return how many ended."""
    count = 0
    for t in range(rewards.shape[0]):
        for n in range(rewards.shape[1]):
            running_return[n] += rewards[t, n]
            running_length[n] += 1
            if dones[t, n]:
                out_returns[count] = running_return[n]
                out_lengths[count] = running_length[n]
                count += 1
                running_return[n] = 0.0
                running_length[n] = 0
    return count


class EpisodeTracker:
    """Running per-row returns and the window of the most recent finished episodes.

    Args:
        num_rows: Rows tracked (every row of the vec env).
        window: Finished episodes kept.

    Example:
        >>> tracker = EpisodeTracker(2, window=10)
        >>> rewards = torch.ones(3, 2)
        >>> dones = torch.tensor([[False, True], [False, False], [True, True]])
        >>> tracker.add_rollout(rewards, dones)  # episodes that ended
        3
        >>> list(tracker.returns), list(tracker.lengths)
        ([1.0, 3.0, 2.0], [1.0, 3.0, 2.0])
    """

    def __init__(self, num_rows: int, window: int = 100) -> None:
        self.running_return = torch.zeros(num_rows, dtype=torch.float64)
        self.running_length = torch.zeros(num_rows, dtype=torch.int64)
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[float] = deque(maxlen=window)
        self._out_returns = np.empty(0, np.float64)
        self._out_lengths = np.empty(0, np.int64)

    def add_rollout(self, rewards: Tensor, dones: Tensor, columns: slice | None = None) -> int:
        """Account for ``[T, n]`` rewards and done flags of rows ``columns`` (default all);
        returns how many episodes ended (the newest ones in :attr:`returns`, at most the
        window). Costs are tracked by a second tracker fed the ``[T, n]`` costs."""
        cols = slice(None) if columns is None else columns
        reward = rewards.detach().cpu().numpy()
        done = dones.detach().cpu().numpy()
        size = done.size
        if self._out_returns.shape[0] < size:
            self._out_returns = np.empty(size, np.float64)
            self._out_lengths = np.empty(size, np.int64)
        count = _accumulate_episodes(
            reward,
            done,
            self.running_return[cols].numpy(),
            self.running_length[cols].numpy(),
            self._out_returns,
            self._out_lengths,
        )
        keep = max(count - (self.returns.maxlen or count), 0)
        self.returns.extend(self._out_returns[keep:count].tolist())
        self.lengths.extend(self._out_lengths[keep:count].astype(np.float64).tolist())
        return int(count)

    def mean_return(self, last: int | None = None) -> float:
        """Mean return of the last ``last`` (default: all kept) episodes; NaN before any."""
        values = list(self.returns)[-last:] if last else list(self.returns)
        return float(np.mean(values)) if values else float("nan")

    def state_dict(self) -> dict[str, Any]:
        """Running sums and the kept episodes."""
        return {
            "running_return": self.running_return.clone(),
            "running_length": self.running_length.clone(),
            "returns": list(self.returns),
            "lengths": list(self.lengths),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.running_return.copy_(state["running_return"])
        self.running_length.copy_(state["running_length"])
        self.returns.clear()
        self.returns.extend(state["returns"])
        self.lengths.clear()
        self.lengths.extend(state["lengths"])
