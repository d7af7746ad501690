"""One optimizer helper for every algorithm: AMP, loss scaling, clipping, schedules, compile.

An algorithm builds one :class:`Optimizer` per set of parameters it trains and calls, per
minibatch, :meth:`Optimizer.backward` on each accumulated chunk (weighted so the chunks add up
to the full minibatch's gradient) and then :meth:`Optimizer.step`. The learning rate follows
the training *progress* (``0`` at the start, ``1`` when ``total_timesteps`` env steps have been
collected, counted in rows), which the trainer passes to every ``update``: schedules do not
depend on how many updates a run makes, on the number of rows per env copy, or on resume.

Example:
    >>> net = torch.nn.Linear(2, 1)
    >>> opt = Optimizer(net.parameters(), learning_rate=0.1, lr_schedule="linear")
    >>> opt.set_progress(0.5)
    0.05
    >>> with opt.autocast():
    ...     loss = net(torch.ones(4, 2)).pow(2).mean()
    >>> opt.backward(loss)
    >>> float(opt.step()) >= 0.0
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from fugu.core.errors import APIUsageError

__all__ = [
    "AMP_MODES",
    "SCHEDULES",
    "Optimizer",
    "all_reduce_gradients",
    "data_parallel_world_size",
    "maybe_compile",
    "schedule_factor",
]

SCHEDULES = ("constant", "linear", "cosine")
"""Learning-rate schedules by training progress."""
AMP_MODES = ("none", "bf16", "fp16")
"""Mixed precision modes: off, bfloat16 autocast (CPU and CUDA), float16 with a loss scaler
(CUDA only)."""

F = TypeVar("F", bound=Callable[..., Any])


def schedule_factor(schedule: str, progress: float) -> float:
    """The learning-rate multiplier of ``schedule`` at ``progress`` in ``[0, 1]``.

    Example:
        >>> schedule_factor("linear", 0.25), schedule_factor("cosine", 1.0)
        (0.75, 0.0)
    """
    progress = min(max(float(progress), 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "constant":
        return 1.0
    raise APIUsageError(f"lr_schedule must be one of {SCHEDULES}, got {schedule!r}")


def maybe_compile(fn: F, enabled: bool) -> F:
    """``torch.compile(fn)`` when ``enabled``, else ``fn`` itself.

    Compiling pays off only for long runs: it took over 100 s on a 2-core machine.
    """
    return torch.compile(fn) if enabled else fn  # type: ignore[return-value]


def data_parallel_world_size() -> int:
    """Processes of the running ``torch.distributed`` group (1 when there is none)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def all_reduce_gradients(params: list[nn.Parameter], world_size: int) -> None:
    """Average the gradients of ``params`` over the ``torch.distributed`` group, in place.

    One flat buffer travels (a single all-reduce per step); a parameter without a gradient on
    this rank counts as zeros, so every rank takes part in the same collective.
    """
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        chunk = flat[offset : offset + n].view_as(g)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        offset += n


class Optimizer:
    """AdamW with mixed precision, loss scaling, gradient clipping and a progress schedule.

    Args:
        parameters: The parameters to train.
        learning_rate: The learning rate at progress 0.
        lr_schedule: One of :data:`SCHEDULES`.
        adam_eps: Adam's epsilon.
        adam_betas: Adam's betas.
        weight_decay: AdamW's decoupled weight decay.
        max_grad_norm: Clip the global gradient norm to this (``0``: no clipping).
        amp: One of :data:`AMP_MODES`; ``fp16`` needs a CUDA ``device``.
        device: Where the parameters live (sets the autocast device type).
        foreach: AdamW's multi-tensor implementation (``None``: torch's default, which is
            off on CPU; ``True`` pays off for the many small steps of off-policy learning).

    Data parallel: when a ``torch.distributed`` process group runs (``torchrun``, see
    :mod:`fugu.train.distributed`), :meth:`step` first averages the gradients over its
    ranks, so every algorithm trains data-parallel without code of its own and every rank
    takes the same step (identical parameters, given identical starting ones).

    Attributes:
        grad_norms: Sum of the pre-clipping gradient norms since :meth:`pop_grad_norm`.
        num_steps: Optimizer steps since :meth:`pop_grad_norm` (for the mean).
    """

    def __init__(
        self,
        parameters: Iterable[nn.Parameter],
        *,
        learning_rate: float,
        lr_schedule: str = "constant",
        adam_eps: float = 1e-8,
        adam_betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        max_grad_norm: float = 0.0,
        amp: str = "none",
        device: torch.device | str = "cpu",
        foreach: bool | None = None,
    ) -> None:
        device = torch.device(device)
        if amp not in AMP_MODES:
            raise APIUsageError(f"amp must be one of {AMP_MODES}, got {amp!r}")
        if amp == "fp16" and device.type != "cuda":
            raise APIUsageError(
                "amp='fp16' needs a CUDA device (it uses a gradient scaler); "
                "use amp='bf16' on CPU or amp='none'"
            )
        schedule_factor(lr_schedule, 0.0)  # validates the name
        self.params = [p for p in parameters if p.requires_grad]
        self.base_learning_rate = float(learning_rate)
        self.lr_schedule = lr_schedule
        self.max_grad_norm = float(max_grad_norm)
        self.device = device
        self.optimizer = torch.optim.AdamW(
            self.params, lr=learning_rate, eps=adam_eps, betas=adam_betas,
            weight_decay=weight_decay, foreach=foreach,
        )  # fmt: skip
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
        self._autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.grad_norms = torch.zeros((), device=device)
        self.num_steps = 0

    @property
    def learning_rate(self) -> float:
        """The current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def set_progress(self, progress: float) -> float:
        """Set the learning rate for training ``progress`` in ``[0, 1]``; returns it."""
        lr = self.base_learning_rate * schedule_factor(self.lr_schedule, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def autocast(self) -> AbstractContextManager[Any]:
        """The autocast context of the configured precision (a no-op without AMP)."""
        if self._autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast_dtype)

    def backward(self, loss: Tensor, weight: float = 1.0) -> None:
        """Accumulate the gradient of ``loss * weight`` (scaled under fp16)."""
        self.scaler.scale(loss * weight if weight != 1.0 else loss).backward()

    def step(self) -> Tensor:
        """Unscale, clip, step and zero the gradients; returns the pre-clipping norm.

        The norm is also added to :attr:`grad_norms` (computed only when clipping).
        """
        norm = torch.zeros((), device=self.device)
        world_size = data_parallel_world_size()
        if world_size > 1:
            if self.scaler.is_enabled():
                self.scaler.unscale_(self.optimizer)
            all_reduce_gradients(self.params, world_size)
        if self.max_grad_norm > 0:
            if world_size == 1 or not self.scaler.is_enabled():
                self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            self.grad_norms += norm.detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.num_steps += 1
        return norm

    def pop_grad_norm(self) -> float:
        """The mean gradient norm over the steps since the last call, and reset the sum."""
        mean = float(self.grad_norms) / max(self.num_steps, 1)
        self.grad_norms.zero_()
        self.num_steps = 0
        return mean

    def state_dict(self) -> dict[str, Any]:
        """Optimizer and loss-scaler state."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
