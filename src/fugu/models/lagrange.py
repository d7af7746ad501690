"""Lagrange multipliers of a cost constraint ``J_c <= limit``: plain and PID updates.

A Lagrangian method turns ``max J_r s.t. J_c <= d`` into the saddle point
``max_pi min_{lambda >= 0} J_r - lambda (J_c - d)``: the policy ascends the penalised
objective while the multiplier follows the constraint violation.

* :class:`LagrangeMultiplier` is plain gradient ascent on ``lambda``,
  ``lambda <- max(0, lambda + lr (J_c - d))``: integral control only, so it oscillates
  (cost overshoots while ``lambda`` grows, then undershoots while it shrinks).
* :class:`PIDLagrangeMultiplier` is Stooke, Achiam and Abbeel (2020): ``lambda`` is a PID
  controller's output on the error ``J_c - d``: a proportional term (an exponential average of
  the error) reacts at once, the non-negative integral is the plain update, and the derivative
  of the (smoothed) cost, only where the cost rises, damps the overshoot.

Both are small state objects with ``state_dict`` / ``load_state_dict`` (plain floats).

Example:
    >>> m = PIDLagrangeMultiplier(kp=0.1, ki=0.01, kd=0.01)
    >>> m.update(cost=40.0, limit=25.0) > 0
    True
    >>> for _ in range(200):
    ...     _ = m.update(cost=0.0, limit=25.0)
    >>> m.value
    0.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from fugu.core.errors import APIUsageError

__all__ = ["LagrangeMultiplier", "PIDLagrangeMultiplier"]


class LagrangeMultiplier:
    """Plain projected gradient ascent on the multiplier.

    Args:
        learning_rate: Step of ``lambda`` per unit of constraint violation.
        initial: The multiplier before any update (``>= 0``).
        max_value: Upper clip of the multiplier (``None``: unbounded).
    """

    def __init__(
        self, learning_rate: float = 0.035, initial: float = 0.0, max_value: float | None = None
    ) -> None:
        if learning_rate <= 0 or initial < 0:
            raise APIUsageError("LagrangeMultiplier needs learning_rate > 0 and initial >= 0")
        self.learning_rate = float(learning_rate)
        self.max_value = max_value
        self.value = float(initial)

    def update(self, cost: float, limit: float) -> float:
        """One ascent step from the mean episode ``cost``; returns the new multiplier."""
        value = max(0.0, self.value + self.learning_rate * (float(cost) - float(limit)))
        self.value = value if self.max_value is None else min(value, self.max_value)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        """The multiplier."""
        return {"value": self.value}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.value = float(state["value"])


class PIDLagrangeMultiplier:
    """PID-controlled multiplier (Stooke et al. 2020, Algorithm 2).

    With error ``e = J_c - d``: ``I <- max(0, I + ki e)``; ``P <- a_p P + (1 - a_p) e``;
    the smoothed cost ``C <- a_d C + (1 - a_d) J_c`` and ``D = max(0, C - C_{k - delay})``;
    ``lambda = max(0, kp P + I + kd D)``.

    Args:
        kp: Proportional gain.
        ki: Integral gain (the plain update's learning rate).
        kd: Derivative gain.
        p_ema: Smoothing ``a_p`` of the proportional error (0: none).
        d_ema: Smoothing ``a_d`` of the cost the derivative sees (0: none).
        d_delay: Updates between the two costs the derivative compares (``>= 1``).
        initial: The integral term (and so the multiplier) before any update.
        max_value: Upper clip of the multiplier (``None``: unbounded).
    """

    def __init__(
        self,
        kp: float = 0.1,
        ki: float = 0.01,
        kd: float = 0.01,
        p_ema: float = 0.95,
        d_ema: float = 0.95,
        d_delay: int = 10,
        initial: float = 0.0,
        max_value: float | None = None,
    ) -> None:
        if min(kp, ki, kd) < 0 or initial < 0 or d_delay < 1:
            raise APIUsageError(
                "PIDLagrangeMultiplier needs kp, ki, kd >= 0, initial >= 0 and d_delay >= 1"
            )
        if not (0.0 <= p_ema < 1.0 and 0.0 <= d_ema < 1.0):
            raise APIUsageError("PIDLagrangeMultiplier needs p_ema and d_ema in [0, 1)")
        self.kp, self.ki, self.kd = float(kp), float(ki), float(kd)
        self.p_ema, self.d_ema, self.d_delay = float(p_ema), float(d_ema), int(d_delay)
        self.max_value = max_value
        self.integral = float(initial)
        self.proportional = 0.0
        self.smoothed_cost: float | None = None
        self._history: deque[float] = deque(maxlen=self.d_delay)
        self.value = float(initial)

    def update(self, cost: float, limit: float) -> float:
        """One controller step from the mean episode ``cost``; returns the new multiplier."""
        cost = float(cost)
        error = cost - float(limit)
        self.integral = max(0.0, self.integral + self.ki * error)
        self.proportional = self.p_ema * self.proportional + (1.0 - self.p_ema) * error
        if self.smoothed_cost is None:
            self.smoothed_cost = cost
        else:
            self.smoothed_cost = self.d_ema * self.smoothed_cost + (1.0 - self.d_ema) * cost
        previous = self._history[0] if self._history else self.smoothed_cost
        derivative = max(0.0, self.smoothed_cost - previous)
        self._history.append(self.smoothed_cost)
        value = max(0.0, self.kp * self.proportional + self.integral + self.kd * derivative)
        self.value = value if self.max_value is None else min(value, self.max_value)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        """The controller's terms and history."""
        return {
            "value": self.value,
            "integral": self.integral,
            "proportional": self.proportional,
            "smoothed_cost": self.smoothed_cost,
            "history": list(self._history),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.value = float(state["value"])
        self.integral = float(state["integral"])
        self.proportional = float(state["proportional"])
        smoothed = state["smoothed_cost"]
        self.smoothed_cost = None if smoothed is None else float(smoothed)
        self._history.clear()
        self._history.extend(float(v) for v in state["history"])
