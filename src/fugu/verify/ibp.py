"""Interval bound propagation: sound, fast, incomplete checks of a :class:`Network`.

Intervals of every neuron over an input box are pushed through the layers (affine layers by
centre and radius, monotone activations at the ends). A property is *proved* when the bounds
settle it on the box, and *violated* when a concrete point (box centres, corners of the varied
input) breaks it, confirmed by evaluating the network. Otherwise the unsettled boxes are split
in two along their widest input (relative to the property's box) and checked again, all boxes
of a round in one batched pass, until every box is settled, a counterexample turns up or
``max_boxes`` is spent (then the answer is ``unknown``).

- ``never_action``: proved on a box when some other action's logit exceeds the action's
  everywhere on it: the bounds of each difference ``logit_j - logit_a`` come from the last
  hidden layer's intervals through the difference of head rows (tighter than subtracting two
  output intervals).
- ``output_bounds``: proved when the output's interval lies within the bounds.
- ``monotonic``: the derivative of the output along the input is bounded by forward-mode
  interval arithmetic (a ReLU's slope is 0, 1 or ``[0, 1]`` on its interval, a tanh's
  ``1 - tanh^2`` between its values at the ends and the point nearest 0); proved when it is
  never negative (increasing) or never positive (decreasing).

Example:
    >>> from fugu.safety.properties import Property
    >>> from fugu.verify.network import Network
    >>> net = Network([(np.array([[1.0], [-1.0]]), np.zeros(2), "linear")])
    >>> prop = Property("x>0 never 1", "never_action", np.array([0.1]), np.array([1.0]), action=1)
    >>> check_ibp(net, prop).status
    'holds'
    >>> bad = Property("anywhere", "never_action", np.array([-1.0]), np.array([1.0]), action=1)
    >>> result = check_ibp(net, bad)
    >>> result.status, result.counterexample[0][0] <= 0
    ('violated', True)
"""

from __future__ import annotations

import time

import numpy as np

from fugu.safety.properties import Property
from fugu.verify.network import Network
from fugu.verify.result import TOLERANCE, VerifyResult, confirm, make_result

__all__ = ["check_ibp", "interval_bounds"]


def _activate(lo: np.ndarray, hi: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    if activation == "relu":
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    if activation == "tanh":
        return np.tanh(lo), np.tanh(hi)
    return lo, hi


def _affine(
    lo: np.ndarray, hi: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    mid, rad = (lo + hi) * 0.5, (hi - lo) * 0.5
    centre = mid @ weight.T + bias
    spread = rad @ np.abs(weight).T
    return centre - spread, centre + spread


def interval_bounds(
    net: Network, low: np.ndarray, high: np.ndarray, layers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``[B, width]`` of the outputs (or of the post-activation values after the first
    ``layers`` layers) over each box ``[low[b], high[b]]`` (``[B, num_inputs]``)."""
    lo, hi = np.atleast_2d(np.asarray(low, np.float64)), np.atleast_2d(np.asarray(high, np.float64))
    for weight, bias, activation in net.layers[: len(net.layers) if layers is None else layers]:
        lo, hi = _activate(*_affine(lo, hi, weight, bias), activation)
    return lo, hi


def _derivative_bounds(
    net: Network, low: np.ndarray, high: np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``[B, num_outputs]`` of d outputs / d input ``dim`` over each box."""
    lo, hi = low, high
    glo = np.zeros_like(low)
    glo[:, dim] = 1.0
    ghi = glo.copy()
    for weight, bias, activation in net.layers:
        zlo, zhi = _affine(lo, hi, weight, bias)
        wpos, wneg = np.maximum(weight, 0.0), np.minimum(weight, 0.0)
        glo, ghi = glo @ wpos.T + ghi @ wneg.T, ghi @ wpos.T + glo @ wneg.T
        if activation == "relu":
            slo = (zlo > 0).astype(np.float64)
            shi = (zhi > 0).astype(np.float64)
        elif activation == "tanh":
            tlo, thi = np.tanh(zlo), np.tanh(zhi)
            nearest = np.where((zlo <= 0) & (zhi >= 0), 0.0, np.minimum(np.abs(zlo), np.abs(zhi)))
            shi = 1.0 - np.tanh(nearest) ** 2
            slo = np.minimum(1.0 - tlo**2, 1.0 - thi**2)
        else:
            slo = shi = np.ones_like(zlo)
        if activation != "linear":
            products = np.stack([glo * slo, glo * shi, ghi * slo, ghi * shi])
            glo, ghi = products.min(axis=0), products.max(axis=0)
        lo, hi = _activate(zlo, zhi, activation)
    return glo, ghi


def _settle(
    net: Network, prop: Property, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(proved [B], counterexample or None)`` for boxes ``[B, d]``."""
    centre = (low + high) * 0.5
    if prop.kind == "never_action":
        hlo, hhi = interval_bounds(net, low, high, len(net.layers) - 1)
        weight, bias, _ = net.layers[-1]
        diff_w = np.delete(weight - weight[prop.action], prop.action, axis=0)
        diff_b = np.delete(bias - bias[prop.action], prop.action)
        if diff_w.shape[0] == 0:  # one action: it is always chosen
            return np.zeros(len(low), bool), centre[:1]
        dlo, _ = _affine(hlo, hhi, diff_w, diff_b)
        proved = dlo.max(axis=1) > 0.0
        out = net.forward(centre)
        bad = out[:, prop.action] >= out.max(axis=1)
        candidates = centre[bad & ~proved]
        return proved, candidates
    if prop.kind == "output_bounds":
        olo, ohi = interval_bounds(net, low, high)
        k = prop.output
        proved = (olo[:, k] > prop.lower - TOLERANCE) & (ohi[:, k] < prop.upper + TOLERANCE)
        value = net.forward(centre)[:, k]
        bad = (value <= prop.lower - TOLERANCE) | (value >= prop.upper + TOLERANCE)
        return proved, centre[bad & ~proved]
    glo, ghi = _derivative_bounds(net, low, high, prop.input)
    k = prop.output
    proved = glo[:, k] >= 0.0 if prop.direction == "increasing" else ghi[:, k] <= 0.0
    start, end = centre.copy(), centre.copy()
    start[:, prop.input] = low[:, prop.input]
    end[:, prop.input] = high[:, prop.input]
    drop = net.forward(start)[:, k] - net.forward(end)[:, k]
    if prop.direction == "decreasing":
        drop = -drop
    bad = (drop >= TOLERANCE) & ~proved
    pairs = np.stack([start[bad], end[bad]], axis=1)  # [n, 2, d]
    return proved, pairs


def check_ibp(net: Network, prop: Property, max_boxes: int = 20_000) -> VerifyResult:
    """Check ``prop`` on ``net`` by interval bound propagation with input splitting.

    Args:
        net: The network.
        prop: The property (its sizes are checked against the network).
        max_boxes: Boxes examined before giving up with ``unknown``.
    """
    start = time.perf_counter()
    prop.check_sizes(net.num_inputs, net.num_outputs)
    low, high = prop.low[None].copy(), prop.high[None].copy()
    width = np.maximum(prop.high - prop.low, 1e-12)
    examined = 0
    while len(low):
        examined += len(low)
        proved, candidates = _settle(net, prop, low, high)
        for points in candidates if candidates is not None else ():
            if confirm(net, prop, points):
                return make_result(prop, "ibp", "violated", time.perf_counter() - start, net,
                                   points, f"{examined} boxes")  # fmt: skip
        low, high = low[~proved], high[~proved]
        if not len(low):
            break
        if examined + 2 * len(low) > max_boxes:
            return make_result(prop, "ibp", "unknown", time.perf_counter() - start,
                               detail=f"{len(low)} boxes unsettled after {examined}")  # fmt: skip
        dim = np.argmax((high - low) / width, axis=1)
        rows = np.arange(len(low))
        mid = (low[rows, dim] + high[rows, dim]) * 0.5
        left_high, right_low = high.copy(), low.copy()
        left_high[rows, dim] = mid
        right_low[rows, dim] = mid
        low, high = np.concatenate([low, right_low]), np.concatenate([left_high, high])
    return make_result(prop, "ibp", "holds", time.perf_counter() - start,
                       detail=f"proved on {examined} boxes")  # fmt: skip
