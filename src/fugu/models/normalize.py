"""Running normalisation as a module: statistics are buffers, so they travel with the weights.

:class:`RunningNorm` keeps the running mean and variance of what it has seen (merged batch by
batch with Chan et al.'s parallel update, exact for any batch split) and normalises inputs
with them. As a ``torch.nn.Module`` its statistics are part of ``state_dict``: a checkpoint's
weights restore them, ``fugu eval`` and exports use them, nothing else has to remember them.

Example:
    >>> norm = RunningNorm((2,))
    >>> norm.update(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
    >>> norm.mean.tolist(), norm.var.tolist()
    ([1.0, 20.0], [1.0, 100.0])
    >>> norm(torch.tensor([[1.0, 30.0]])).tolist()
    [[0.0, 1.0]]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["RunningNorm"]


class RunningNorm(nn.Module):
    """Running mean/variance over the leading dimension, and ``(x - mean) / std`` clipped.

    Args:
        shape: Shape of one sample.
        clip: Clip normalised values to ``[-clip, clip]`` (``None``: no clipping).
        eps: Added to the variance before the square root.
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(
        self, shape: tuple[int, ...] = (), clip: float | None = 10.0, eps: float = 1e-8
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.clip = clip
        self.eps = eps

    @torch.no_grad()
    def update(self, samples: Tensor) -> None:
        """Merge the statistics of ``samples [n, *shape]`` into the running ones."""
        x = samples.detach().to(self.mean.device, torch.float64).reshape(-1, *self.mean.shape)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        if self.count == 0:
            self.mean.copy_(batch_mean)
            self.var.copy_(batch_var)
            self.count.fill_(n)
            return
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean.add_(delta * n / total)
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> Tensor:
        """``sqrt(var + eps)`` in float32."""
        return torch.sqrt(self.var + self.eps).float()

    def forward(self, x: Tensor) -> Tensor:
        """``(x - mean) / std``, clipped to ``[-clip, clip]``."""
        out = (x - self.mean.float()) / self.std
        if self.clip is not None:
            out = out.clamp(-self.clip, self.clip)
        return out

    def denormalize(self, x: Tensor) -> Tensor:
        """``x * std + mean`` (the inverse, without clipping)."""
        return x * self.std + self.mean.float()
