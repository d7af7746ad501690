"""Activations tuned for CPU throughput.

``torch.tanh`` is several times slower than ``torch.sigmoid`` on some CPU builds (measured on
fugu's 2-core reference machine). :func:`fast_tanh` computes ``tanh(x) = 2 sigmoid(2x) - 1``
with a backward pass that reuses the output (``1 - y^2``), and is exact to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["fast_tanh"]


class _FastTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y^2), one fused kernel


def fast_tanh(x: Tensor) -> Tensor:
    """``tanh`` as ``2 * sigmoid(2 x) - 1`` (faster on CPU), differentiable.

    Example:
        >>> x = torch.linspace(-5, 5, 11)
        >>> bool((fast_tanh(x) - torch.tanh(x)).abs().max() < 1e-6)
        True
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _FastTanh.apply(x)  # type: ignore[no-any-return]
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
