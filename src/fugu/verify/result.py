"""What checking one property with one engine returns, and the counterexample checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fugu.safety.properties import Property
from fugu.verify.network import Network

__all__ = ["STATUSES", "TOLERANCE", "VerifyResult", "confirm", "make_result"]

STATUSES = ("holds", "violated", "unknown")
"""A property holds (proved), is violated (a counterexample is given) or is unknown."""

TOLERANCE = 1e-4
"""Margin of ``output_bounds`` and ``monotonic``: a violation must exceed it (numbers closer
than this to a bound are numerical noise, not a counterexample)."""


@dataclass
class VerifyResult:
    """One property checked by one engine.

    Attributes:
        name: The property's name.
        kind: Its kind.
        engine: ``"ibp"``, ``"z3"`` or ``"marabou"``.
        status: One of :data:`STATUSES`.
        seconds: Wall time of the check.
        counterexample: For ``violated``: the input (``never_action``, ``output_bounds``) or
            the pair of inputs (``monotonic``: ``[x, x_prime]``) that breaks the property.
        outputs: The network's outputs at the counterexample (one list per input).
        detail: Why a result is unknown, or what was proved.
    """

    name: str
    kind: str
    engine: str
    status: str
    seconds: float = 0.0
    counterexample: list[list[float]] | None = None
    outputs: list[list[float]] | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "name": self.name,
            "kind": self.kind,
            "engine": self.engine,
            "status": self.status,
            "seconds": self.seconds,
            "counterexample": self.counterexample,
            "outputs": self.outputs,
            "detail": self.detail,
        }


def confirm(net: Network, prop: Property, points: np.ndarray) -> bool:
    """Whether ``points`` (one input, or a monotonic pair ``[2, d]``) break ``prop`` on the
    network when evaluated in float64 (every engine's counterexample is checked this way)."""
    points = np.atleast_2d(np.asarray(points, np.float64))
    slack = 1e-9 * (1.0 + np.abs(points).max())
    if (points < prop.low - slack).any() or (points > prop.high + slack).any():
        return False
    points = np.clip(points, prop.low, prop.high)
    out = net.forward(points)
    if prop.kind == "never_action":
        chosen = out[0, prop.action]
        return bool(chosen >= out[0].max() - 1e-9)
    if prop.kind == "output_bounds":
        value = out[0, prop.output]
        return bool(value <= prop.lower - TOLERANCE * 0.5 or value >= prop.upper + TOLERANCE * 0.5)
    x, x_prime = points[0], points[1]
    others = np.delete(np.arange(len(x)), prop.input)
    if (
        np.abs(x[others] - x_prime[others]).max(initial=0.0) > slack
        or x_prime[prop.input] < x[prop.input]
    ):
        return False
    drop = out[0, prop.output] - out[1, prop.output]
    if prop.direction == "decreasing":
        drop = -drop
    return bool(drop >= TOLERANCE * 0.5)


def make_result(
    prop: Property,
    engine: str,
    status: str,
    seconds: float,
    net: Network | None = None,
    points: np.ndarray | None = None,
    detail: str = "",
) -> VerifyResult:
    """A :class:`VerifyResult`, with the counterexample's outputs filled in."""
    counterexample = outputs = None
    if points is not None and net is not None:
        pts = np.clip(np.atleast_2d(np.asarray(points, np.float64)), prop.low, prop.high)
        counterexample = pts.tolist()
        outputs = net.forward(pts).tolist()
    return VerifyResult(prop.name, prop.kind, engine, status, seconds, counterexample, outputs,
                        detail)  # fmt: skip
