"""The Pareto front of score (higher is better) against cost (lower is better), and its pruning.

A point is on the front when no other point has a score at least as high for a cost at most as
low (with one of the two strictly better). Sorted by cost, the front's scores strictly increase:
it answers "what is the best score reachable for this much compute".

Example:
    >>> scores = [0.1, 0.5, 0.4, 0.94, 0.95]
    >>> costs = [1.0, 2.0, 3.0, 8.0, 100.0]
    >>> pareto_front(scores, costs).tolist()
    [0, 1, 3, 4]
    >>> prune_front(scores, costs, pareto_front(scores, costs)).tolist()
    [0, 1, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["front_score_at", "hypervolume", "pareto_front", "prune_front"]


def pareto_front(
    scores: Sequence[float] | np.ndarray, costs: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Indices of the non-dominated points, sorted by increasing cost.

    Points with a non-finite score or cost are ignored. Among exact duplicates, the first is kept.

    Args:
        scores: Score of each point (maximised).
        costs: Cost of each point (minimised).

    Returns:
        An int64 array of indices into ``scores``, in increasing cost (and increasing score).
    """
    s = np.asarray(scores, np.float64).reshape(-1)
    c = np.asarray(costs, np.float64).reshape(-1)
    valid = np.flatnonzero(np.isfinite(s) & np.isfinite(c))
    # by cost ascending, then score descending, then index ascending (first duplicate wins)
    order = valid[np.lexsort((valid, -s[valid], c[valid]))]
    front: list[int] = []
    best = -np.inf
    for i in order:
        if s[i] > best:
            front.append(int(i))
            best = s[i]
    return np.asarray(front, np.int64)


def prune_front(
    scores: Sequence[float] | np.ndarray,
    costs: Sequence[float] | np.ndarray,
    front: np.ndarray,
    *,
    efficiency_threshold: float = 0.5,
    stop_score_fraction: float = 0.98,
) -> np.ndarray:
    """Drop the front's inefficient expensive tail.

    Walking from the most expensive point down, a point is dropped while the score it gains over
    its cheaper neighbour, per unit of log cost (both normalised by the front's ranges), is below
    ``efficiency_threshold`` and that neighbour already reaches ``stop_score_fraction`` of the
    front's best score (the whole top is never given away for a cheaper, much worse point).

    Args:
        scores: Score of every point.
        costs: Cost of every point (positive).
        front: Indices of the front sorted by cost, as returned by :func:`pareto_front`.
        efficiency_threshold: Normalised score gain per normalised log-cost increase below which
            an expensive point is not worth its cost.
        stop_score_fraction: Pruning stops at a point whose cheaper neighbour scores below this
            fraction of the best score (measured from the front's lowest score).

    Returns:
        The kept indices, a prefix of ``front``.
    """
    if len(front) < 3:
        return np.asarray(front, np.int64)
    s = np.asarray(scores, np.float64)[front]
    log_c = np.log(np.maximum(np.asarray(costs, np.float64)[front], 1e-300))
    score_range = max(s[-1] - s[0], 1e-12)
    cost_range = max(log_c[-1] - log_c[0], 1e-12)
    threshold = s[0] + stop_score_fraction * (s[-1] - s[0])
    keep = len(front)
    while keep > 2:
        i = keep - 1
        if s[i - 1] < threshold:
            break
        gain = (s[i] - s[i - 1]) / score_range
        increase = (log_c[i] - log_c[i - 1]) / cost_range
        if gain / (increase + 1e-12) >= efficiency_threshold:
            break
        keep -= 1
    return np.asarray(front[:keep], np.int64)


def front_score_at(
    scores: Sequence[float] | np.ndarray,
    costs: Sequence[float] | np.ndarray,
    query_costs: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """The score the front predicts at each query cost (linear in log cost between its points).

    Below the cheapest front point the prediction is ``-inf`` (the front says nothing there);
    above the most expensive one it is the best score.

    Example:
        >>> front_score_at([0.0, 1.0], [1.0, 100.0], [0.5, 10.0, 1000.0]).round(6).tolist()
        [-inf, 0.5, 1.0]
    """
    front = pareto_front(scores, costs)
    q = np.log(np.maximum(np.asarray(query_costs, np.float64).reshape(-1), 1e-300))
    if len(front) == 0:
        return np.full(q.shape, -np.inf)
    s = np.asarray(scores, np.float64)[front]
    log_c = np.log(np.maximum(np.asarray(costs, np.float64)[front], 1e-300))
    out = np.interp(q, log_c, s)
    out[q < log_c[0]] = -np.inf
    return out


def hypervolume(
    scores: Sequence[float] | np.ndarray,
    costs: Sequence[float] | np.ndarray,
    *,
    score_ref: float,
    score_max: float,
    cost_min: float,
    cost_max: float,
) -> float:
    """Area dominated by the front in normalised (score, log cost) coordinates, in [0, 1].

    Scores are scaled to [0, 1] between ``score_ref`` and ``score_max``; costs to [0, 1] in log
    scale between ``cost_min`` and ``cost_max``. The reference point is (score 0, cost 1): the
    result is the integral over normalised cost of the best normalised score reached at that cost.

    Example:
        >>> hypervolume([1.0], [1.0], score_ref=0.0, score_max=1.0, cost_min=1.0, cost_max=10.0)
        1.0
        >>> round(hypervolume([0.5, 1.0], [1.0, 10 ** 0.5], score_ref=0.0, score_max=1.0,
        ...                   cost_min=1.0, cost_max=10.0), 6)
        0.75
    """
    s = (np.asarray(scores, np.float64) - score_ref) / (score_max - score_ref)
    log_c = np.log(np.maximum(np.asarray(costs, np.float64), 1e-300))
    c = (log_c - np.log(cost_min)) / (np.log(cost_max) - np.log(cost_min))
    ok = np.isfinite(s) & np.isfinite(c) & (c <= 1.0)
    s, c = np.clip(s[ok], 0.0, 1.0), np.clip(c[ok], 0.0, 1.0)
    front = pareto_front(s, c)
    if len(front) == 0:
        return 0.0
    edges = np.append(c[front], 1.0)
    return float(np.sum(s[front] * np.diff(edges)))
