"""Data-parallel training with ``torch.distributed``: ranks, seeds, agreement, checkpoints.

Launch ``torchrun --nproc-per-node K -m fugu train ENV ...`` (or any launcher that sets
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``). Every rank then

- builds its own envs, seeded ``train.seed + rank * RANK_SEED_STRIDE`` (different data);
- starts from rank 0's weights (:func:`broadcast_modules`);
- averages gradients in :meth:`fugu.models.optim.Optimizer.step` before each step (one
  all-reduce), so the parameters stay identical on every rank;
- agrees with the others on when to stop (:func:`agree`);
- leaves logging, the run directory and checkpoints to rank 0, which gathers every rank's
  trainer state into the checkpoint (``state["ranks"]``), so a resumed run gives each rank its
  own envs, RNGs and episode counters back.

The backend is ``gloo`` on CPU and ``nccl`` on CUDA (``LOCAL_RANK`` picks the GPU).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from fugu.core.errors import APIUsageError

__all__ = [
    "RANK_SEED_STRIDE",
    "DistInfo",
    "agree",
    "broadcast_modules",
    "broadcast_object",
    "dist_info",
    "gather_objects",
    "init_from_env",
    "launched_distributed",
    "rank_config",
    "rank_seed",
    "shutdown",
]

RANK_SEED_STRIDE = 1_000_003
"""Rank ``r`` seeds its envs with ``train.seed + r * RANK_SEED_STRIDE``."""

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the data-parallel group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1


def launched_distributed() -> bool:
    """Whether a launcher (``torchrun``) started this process as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def dist_info() -> DistInfo:
    """The running group's :class:`DistInfo` (rank 0 of 1 without one)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(
        int(dist.get_rank()), int(dist.get_world_size()), int(os.environ.get("LOCAL_RANK", 0))
    )


def init_from_env(device: str = "cpu") -> DistInfo:
    """Join the process group a launcher described in the environment (gloo / nccl).

    Raises:
        APIUsageError: No launcher set ``WORLD_SIZE`` > 1 (run under ``torchrun``).
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist_info()
    if not launched_distributed():
        raise APIUsageError(
            "distributed training needs a launcher: run `torchrun --nproc-per-node K -m fugu "
            "train ...` (WORLD_SIZE is not set above 1)"
        )
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist_info()


def shutdown() -> None:
    """Leave the process group (no-op without one)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, info: DistInfo) -> int:
    """The env/algorithm seed of ``info.rank``.

    Example:
        >>> rank_seed(1, DistInfo(rank=2, world_size=4))
        2000007
    """
    return int(seed) + info.rank * RANK_SEED_STRIDE


def rank_config(config: T, info: DistInfo) -> T:
    """``config`` (an :class:`~fugu.train.experiment.ExperimentConfig`) with this rank's
    ``train.seed``."""
    seed = rank_seed(config.train.seed, info)  # type: ignore[attr-defined]
    return config.with_overrides({"train.seed": seed})  # type: ignore[attr-defined, no-any-return]


def broadcast_modules(modules: Mapping[str, nn.Module]) -> None:
    """Overwrite every rank's parameters and buffers with rank 0's."""
    if not dist_info().enabled:
        return
    with torch.no_grad():
        for module in modules.values():
            for tensor in [*module.parameters(), *module.buffers()]:
                torch.distributed.broadcast(tensor.data, src=0)


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if not dist_info().enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def gather_objects(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (in rank order), ``None`` elsewhere."""
    info = dist_info()
    if not info.enabled:
        return [obj]
    out: list[Any] | None = [None] * info.world_size if info.is_main else None
    torch.distributed.gather_object(obj, out, dst=0)
    return out


def agree(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (stop together)."""
    if not dist_info().enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int64)
    if torch.distributed.get_backend() == "nccl":
        tensor = tensor.cuda()
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return bool(tensor.item())
