"""Exact episode returns and lengths, counted by the trainer from the rewards it collects.

Envs report aggregated episode statistics (a mean over many episodes), which cannot give the
mean of exactly the last 100 episodes. :class:`EpisodeTracker` sums each row's rewards itself,
once per rollout (a loop over the horizon, not over rows), and keeps the most recent episodes
in finishing order, so solve detection is exact.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["EpisodeTracker", "add_infos"]


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


class EpisodeTracker:
    """Running per-row returns and the window of the most recent finished episodes.

    Args:
        num_rows: Rows tracked (every row of the vec env).
        window: Finished episodes kept.

    Example:
        >>> tracker = EpisodeTracker(2, window=10)
        >>> rewards = torch.ones(3, 2)
        >>> dones = torch.tensor([[False, True], [False, False], [True, True]])
        >>> tracker.add_rollout(rewards, dones)
        >>> list(tracker.returns), list(tracker.lengths)
        ([1.0, 3.0, 2.0], [1.0, 3.0, 2.0])
    """

    def __init__(self, num_rows: int, window: int = 100) -> None:
        self.running_return = torch.zeros(num_rows, dtype=torch.float64)
        self.running_length = torch.zeros(num_rows, dtype=torch.int64)
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[float] = deque(maxlen=window)

    def add_rollout(self, rewards: Tensor, dones: Tensor, columns: slice | None = None) -> None:
        """Account for ``[T, n]`` rewards and done flags of rows ``columns`` (default all)."""
        cols = slice(None) if columns is None else columns
        running_return = self.running_return[cols]
        running_length = self.running_length[cols]
        rewards = rewards.detach().to("cpu", torch.float64)
        dones = dones.detach().cpu()
        for t in range(rewards.shape[0]):
            running_return += rewards[t]
            running_length += 1
            ended = dones[t]
            if bool(ended.any()):
                self.returns.extend(running_return[ended].tolist())
                self.lengths.extend(running_length[ended].to(torch.float64).tolist())
                running_return[ended] = 0.0
                running_length[ended] = 0

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
