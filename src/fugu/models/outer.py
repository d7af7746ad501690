"""An outer optimiser over an inner loop's parameter change (Outer-PPO).

PPO's epochs move the parameters from ``theta_k`` to ``theta_inner``. Outer-PPO reads that
change as an *outer gradient* ``g = theta_k - theta_inner`` and applies it with an optimiser
of its own: an outer learning rate ``lr`` (``> 1`` goes beyond the inner loop's point, ``< 1``
stops short of it) and (Nesterov) momentum ``mu`` over successive outer gradients:

.. code-block:: text

    m      <- mu * m + g
    d      =  g + mu * m          (Nesterov; plain momentum uses d = m)
    theta  <- theta_k - lr * d

Momentum-biased initialisation (``init_coef``) starts the next inner loop at
``theta_k - init_coef * m`` instead of ``theta_k``, a step along the momentum; the outer
gradient is still measured from ``theta_k``.

The step is written as ``theta_inner + (g - lr * d)``, so with ``lr = 1`` and ``mu = 0`` the
parameters are left *exactly* where the inner loop put them: plain PPO, bit for bit.

Example:
    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> outer = OuterOptimizer([w], lr=0.5, momentum=0.9)
    >>> outer.begin()
    >>> with torch.no_grad():
    ...     _ = w.sub_(0.2)  # the inner loop's change: g = 0.2
    >>> _ = outer.step()
    >>> round(w.item(), 4)  # 1 - 0.5 * (0.2 + 0.9 * 0.2)
    0.81
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from fugu.core.errors import APIUsageError

__all__ = ["OuterOptimizer"]


class OuterOptimizer:
    """Apply an inner loop's parameter change as an outer gradient (see the module docstring).

    Call :meth:`begin` before the inner loop and :meth:`step` after it.

    Args:
        params: The parameters the inner optimiser trains.
        lr: Outer learning rate (``1``: keep the inner loop's result).
        momentum: Outer momentum ``mu`` in ``[0, 1)``.
        nesterov: Nesterov momentum (else heavy-ball).
        init_coef: Momentum-biased initialisation: the inner loop starts at
            ``theta_k - init_coef * m``.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1.0,
        momentum: float = 0.0,
        nesterov: bool = True,
        init_coef: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise APIUsageError(f"the outer learning rate must be > 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise APIUsageError(f"the outer momentum must be in [0, 1), got {momentum}")
        if init_coef < 0:
            raise APIUsageError(f"the outer init_coef must be >= 0, got {init_coef}")
        self.params = [p for p in params if p.requires_grad]
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.init_coef = float(init_coef)
        self.buffers = [torch.zeros_like(p, memory_format=torch.preserve_format)
                        for p in self.params]  # fmt: skip
        self._anchor: list[Tensor] | None = None

    def begin(self) -> None:
        """Remember ``theta_k`` and move to the inner loop's (momentum-biased) start."""
        with torch.no_grad():
            self._anchor = [p.detach().clone() for p in self.params]
            if self.init_coef:
                for p, m in zip(self.params, self.buffers):
                    p.sub_(m, alpha=self.init_coef)

    def step(self) -> float:
        """Apply the outer update; returns the norm of the outer gradient."""
        if self._anchor is None:
            raise APIUsageError("OuterOptimizer.step() needs begin() before the inner loop")
        squares = torch.zeros((), dtype=torch.float64)
        with torch.no_grad():
            for p, anchor, m in zip(self.params, self._anchor, self.buffers):
                g = anchor - p
                m.mul_(self.momentum).add_(g)
                d = g + self.momentum * m if self.nesterov else m
                p.add_(g - self.lr * d)
                squares += g.double().pow(2).sum().cpu()
        self._anchor = None
        return float(squares.sqrt())

    def state_dict(self) -> dict[str, Any]:
        """The momentum buffers."""
        return {"buffers": [m.clone() for m in self.buffers]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        buffers = state["buffers"]
        if len(buffers) != len(self.buffers):
            raise APIUsageError(
                f"outer state has {len(buffers)} buffers, this optimiser {len(self.buffers)}"
            )
        for m, saved in zip(self.buffers, buffers):
            m.copy_(saved)
