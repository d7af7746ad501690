"""Running statistics shared by the exploration hooks: observation and reward normalisation.

Example:
    >>> stats = RunningMeanStd(())
    >>> stats.update(torch.tensor([1.0, 3.0]))
    >>> float(stats.mean), float(stats.var)
    (2.0, 1.0)
    >>> stats.update(torch.tensor([5.0, 7.0]))
    >>> float(stats.mean), float(stats.var)
    (4.0, 5.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["RunningMeanStd", "discounted_running_returns"]


class RunningMeanStd:
    """Mean and (population) variance of every sample seen, merged batch by batch (Chan et al.).

    Args:
        shape: The shape of one sample (``()`` for scalars).
        device: Where the statistics live.
        max_count: Cap of the weight of the past (in samples): once reached, each batch of
            ``n`` samples weighs ``n / (max_count + n)``, so the statistics follow a drifting
            distribution (an exponential forgetting). ``None``: every sample weighs the same.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        device: torch.device | str = "cpu",
        max_count: float | None = None,
    ) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = 0.0
        self.max_count = max_count

    def update(self, samples: Tensor) -> None:
        """Merge ``samples [B, *shape]`` into the statistics (no-op when ``B == 0``)."""
        x = samples.reshape(-1, *self.mean.shape)
        n = float(x.shape[0])
        if n == 0:
            return
        # the batch's moments (in float32 unless given float64) about the running mean, so the
        # squares cancel little (torch.var_mean over dim 0 is several times slower on CPU)
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        d = x.to(work) - self.mean.to(work)
        d_mean = d.mean(0)
        var = ((d * d).mean(0) - d_mean * d_mean).clamp_min(0.0).to(torch.float64)
        mean = d_mean.to(torch.float64) + self.mean
        if self.count == 0:
            self.mean.copy_(mean)
            self.var.copy_(var)
            self.count = n if self.max_count is None else min(n, float(self.max_count))
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * (n / total)
        self.var.copy_(
            (self.var * self.count + var * n + delta**2 * self.count * n / total) / total
        )
        self.count = total

    @property
    def std(self) -> Tensor:
        """``sqrt(var)`` (float64)."""
        return self.var.sqrt()

    def state_dict(self) -> dict[str, Any]:
        """Mean, variance and count."""
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.mean.copy_(state["mean"])
        self.var.copy_(state["var"])
        self.count = float(state["count"])


def discounted_running_returns(rewards: Tensor, carry: Tensor, gamma: float) -> Tensor:
    """Non-episodic discounted sums ``R_t = gamma * R_{t-1} + r_t`` along ``[T, N]`` rewards.

    ``carry [N]`` is ``R_{-1}`` (the previous rollout's last sums) and is updated in place to
    ``R_{T-1}``; episode ends do not cut the sums (intrinsic returns span episodes).

    Example:
        >>> carry = torch.zeros(1)
        >>> discounted_running_returns(torch.ones(3, 1), carry, 0.5).flatten().tolist()
        [1.0, 1.5, 1.75]
        >>> carry.tolist()
        [1.75]
    """
    out = torch.empty_like(rewards)
    running = carry.to(rewards.dtype)
    for t in range(rewards.shape[0]):
        running = gamma * running + rewards[t]
        out[t] = running
    carry.copy_(running)
    return out
