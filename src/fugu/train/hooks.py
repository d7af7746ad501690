"""Reward hooks: intrinsic or learned rewards added to a rollout before the algorithm's update.

A hook sees the filled :class:`~fugu.buffers.Batch` (before advantages are computed, which is
the algorithm's job inside ``update``), returns ``[T, N]`` rewards to add, and may train itself
on the batch. Curiosity (ICM, RND) and learned reward models are hooks; the trainer applies
them for any rollout algorithm.

Example:
    >>> import torch
    >>> from fugu.buffers import Batch
    >>> class Bonus:
    ...     name = "bonus"
    ...     def rewards(self, batch):
    ...         return torch.full_like(batch["rewards"], 0.5)
    ...     def update(self, batch):
    ...         return {}
    >>> batch = Batch({"rewards": torch.ones(2, 3)})
    >>> metrics = apply_reward_hooks([Bonus()], batch)
    >>> batch["rewards"][0].tolist(), metrics["reward/bonus_mean"]
    ([1.5, 1.5, 1.5], 0.5)

Two optional attributes widen what a hook gets and gives: ``needs_next_observations = True``
makes the trainer store ``next_observations`` (the final observations of ended episodes) in
rollout batches, and ``target = "intrinsic_rewards"`` adds the hook's rewards to that batch
entry (created as zeros) instead of ``rewards``, for an algorithm with a separate intrinsic
critic (``ppo_rnd``, see :mod:`fugu.algos.ppo_rnd`).

    >>> Bonus.target = "intrinsic_rewards"
    >>> batch = Batch({"rewards": torch.ones(2, 3)})
    >>> _ = apply_reward_hooks([Bonus()], batch)
    >>> batch["rewards"][0].tolist(), batch["intrinsic_rewards"][0].tolist()
    ([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from fugu.buffers import Batch

__all__ = ["RewardHook", "apply_reward_hooks", "hooks_need_next_observations"]


@runtime_checkable
class RewardHook(Protocol):
    """Adds rewards to a rollout; ``name`` prefixes its metrics (``reward/<name>_mean``)."""

    name: str

    def rewards(self, batch: Batch) -> Tensor:
        """``[T, N]`` rewards to add to ``batch["rewards"]`` (computed without gradients)."""
        ...

    def update(self, batch: Batch) -> dict[str, float]:
        """Train the hook's own model on the batch (a no-op for fixed bonuses); metrics."""
        ...


def hooks_need_next_observations(hooks: Sequence[RewardHook]) -> bool:
    """Whether some hook asks for ``next_observations`` (``needs_next_observations``)."""
    return any(getattr(hook, "needs_next_observations", False) for hook in hooks)


def apply_reward_hooks(hooks: Sequence[RewardHook], batch: Batch) -> dict[str, float]:
    """Add every hook's rewards to ``batch["rewards"]`` (or to the batch entry its ``target``
    names), only on live steps, then let each hook learn from the batch. Returns their
    metrics."""
    if not hooks:
        return {}
    metrics: dict[str, float] = {}
    sums: dict[str, Tensor] = {"rewards": batch.data["rewards"].clone()}
    masks = batch.data.get("masks")
    for hook in hooks:
        target = getattr(hook, "target", "rewards")
        if target not in sums:
            sums[target] = torch.zeros_like(sums["rewards"])
        with torch.no_grad():
            extra = hook.rewards(batch).to(sums[target].dtype)
        if masks is not None:
            extra = torch.where(masks, extra, torch.zeros_like(extra))
        sums[target] += extra
        metrics[f"reward/{hook.name}_mean"] = float(extra.mean())
    batch.data.update(sums)
    for hook in hooks:
        metrics.update(hook.update(batch))
    return metrics
