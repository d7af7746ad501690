"""What RND and ICM share: small networks, the intrinsic-reward normaliser, minibatch indices.

:class:`IntrinsicRewards` turns raw novelty ``[T, N]`` into the rewards a hook returns: divided
by the running standard deviation of their non-episodic discounted sums (the RND paper's
normalisation, so one coefficient suits every env), scaled by ``coef``, and summed per
episode for logging (``explore/<name>_episode_return``, separate from the env's extrinsic
``env/episode_return``).

Example:
    >>> norm = IntrinsicRewards("rnd", coef=1.0, gamma=0.99, normalize=False)
    >>> batch = {"terminals": torch.tensor([[False], [True]]), "truncations": torch.zeros(2, 1,
    ...          dtype=torch.bool), "masks": torch.ones(2, 1, dtype=torch.bool)}
    >>> norm(torch.tensor([[1.0], [2.0]]), batch).flatten().tolist()
    [1.0, 2.0]
    >>> norm.metrics()["explore/rnd_episode_return"]
    3.0
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from fugu.explore.normalize import RunningMeanStd, discounted_running_returns

__all__ = ["IntrinsicRewards", "flat_size", "minibatch_indices", "mlp"]


def flat_size(shape: tuple[int, ...]) -> int:
    """Features of one flattened observation."""
    return int(math.prod(shape))


def mlp(
    sizes: list[int], activation: type[nn.Module] = nn.ReLU, gain: float | None = None
) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last).

    ``gain``: orthogonal initialisation of the weights with this gain and zero biases (the RND
    paper's ``sqrt(2)``: outputs of order one); ``None`` keeps torch's default.

    Example:
        >>> mlp([4, 8, 2])
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=2, bias=True)
        )
    """
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(a, b)
        if gain is not None:
            nn.init.orthogonal_(linear.weight, gain)
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if k < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def minibatch_indices(
    count: int, num_minibatches: int, generator: torch.Generator, proportion: float = 1.0
) -> list[Tensor]:
    """A random partition of ``round(proportion * count)`` of ``count`` samples into
    ``num_minibatches`` index tensors (CPU; empty ones dropped)."""
    order = torch.randperm(count, generator=generator)
    keep = max(1, round(proportion * count)) if count else 0
    return [mb for mb in torch.tensor_split(order[:keep], num_minibatches) if mb.numel()]


class IntrinsicRewards:
    """Normalise raw novelty into rewards and track their per-episode sums (see module doc).

    Args:
        name: The hook's name (prefixes the metrics).
        coef: Scale of the normalised rewards.
        gamma: Discount of the running intrinsic returns whose spread normalises the rewards.
        normalize: Divide by that spread (``False``: only ``coef`` scales the raw novelty).
        horizon: Samples the spread is measured over (older ones are forgotten
            exponentially); ``None``: all samples since the start, as in the RND paper, which
            lets the rewards fade as the predictor learns.
    """

    def __init__(
        self,
        name: str,
        coef: float,
        gamma: float,
        normalize: bool = True,
        horizon: float | None = None,
    ) -> None:
        self.name = name
        self.coef = float(coef)
        self.gamma = float(gamma)
        self.normalize = normalize
        self.return_stats = RunningMeanStd((), max_count=horizon)
        self.carry: Tensor | None = None
        self.episode_sums: Tensor | None = None
        self._metrics: dict[str, float] = {}

    def __call__(self, raw: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """Rewards ``[T, N]`` from raw novelty ``[T, N]`` of ``batch`` (updates the stats)."""
        steps, rows = raw.shape
        if self.carry is None or self.carry.shape[0] != rows:
            self.carry = torch.zeros(rows, dtype=raw.dtype, device=raw.device)
            self.episode_sums = torch.zeros(rows, dtype=raw.dtype, device=raw.device)
        masks = batch.get("masks")
        live = masks if masks is not None else torch.ones_like(raw, dtype=torch.bool)
        rewards = raw
        if self.normalize:
            returns = discounted_running_returns(raw, self.carry, self.gamma)
            self.return_stats.update(returns[live])
            rewards = raw / (self.return_stats.std.to(raw.dtype) + 1e-8)
        rewards = self.coef * rewards
        dones = batch["terminals"] | batch["truncations"]
        assert self.episode_sums is not None
        sums = self.episode_sums
        ended = torch.full_like(rewards, float("nan"))  # the sum of each episode at its end
        zero = torch.zeros_like(sums)
        for t in range(steps):  # no host syncs: the T steps stay on the device
            sums += torch.where(live[t], rewards[t], zero)
            ended[t] = torch.where(dones[t], sums, ended[t])
            sums.copy_(torch.where(dones[t], zero, sums))
        self._metrics = {
            f"explore/{self.name}_raw_mean": float(raw[live].mean()) if live.any() else 0.0,
            f"explore/{self.name}_return_std": float(self.return_stats.std),
        }
        finished = ended[~ended.isnan()]
        if finished.numel():
            self._metrics[f"explore/{self.name}_episode_return"] = float(finished.mean())
        return rewards

    def metrics(self) -> dict[str, float]:
        """Metrics of the last call: raw novelty mean, return spread, episode return."""
        return dict(self._metrics)

    def state_dict(self) -> dict[str, Any]:
        """Return statistics and the per-row running sums."""
        return {
            "return_stats": self.return_stats.state_dict(),
            "carry": None if self.carry is None else self.carry.clone(),
            "episode_sums": None if self.episode_sums is None else self.episode_sums.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.return_stats.load_state_dict(state["return_stats"])
        self.carry = None if state["carry"] is None else state["carry"].clone()
        sums = state["episode_sums"]
        self.episode_sums = None if sums is None else sums.clone()
