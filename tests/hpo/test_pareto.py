"""Pareto front against brute force, pruning, front interpolation, hypervolume."""

from __future__ import annotations

import numpy as np
import pytest

from fugu.hpo.pareto import front_score_at, hypervolume, pareto_front, prune_front


def brute_force_front(scores, costs):
    keep = []
    for i in range(len(scores)):
        if not (np.isfinite(scores[i]) and np.isfinite(costs[i])):
            continue
        dominated = False
        for j in range(len(scores)):
            if j == i or not (np.isfinite(scores[j]) and np.isfinite(costs[j])):
                continue
            better_or_equal = scores[j] >= scores[i] and costs[j] <= costs[i]
            strictly = scores[j] > scores[i] or costs[j] < costs[i]
            if better_or_equal and (strictly or j < i):  # exact duplicates: first one wins
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: costs[i])


@pytest.mark.parametrize("seed", range(20))
def test_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    # rounded values make ties and duplicates common
    scores = np.round(rng.normal(size=n), 1)
    costs = np.round(rng.uniform(1, 10, size=n), 0)
    if seed % 3 == 0:
        scores[0] = np.nan
    assert pareto_front(scores, costs).tolist() == brute_force_front(scores, costs)


def test_front_is_sorted_and_increasing():
    rng = np.random.default_rng(0)
    scores, costs = rng.normal(size=200), rng.uniform(1, 100, size=200)
    front = pareto_front(scores, costs)
    assert np.all(np.diff(costs[front]) > 0) and np.all(np.diff(scores[front]) > 0)
    assert pareto_front([], []).tolist() == []


def test_prune_drops_flat_expensive_tail():
    scores = np.array([0.0, 0.5, 0.9, 0.995, 0.999, 1.0])
    costs = np.array([1.0, 2.0, 4.0, 8.0, 64.0, 1000.0])
    front = pareto_front(scores, costs)
    kept = prune_front(scores, costs, front)
    assert kept.tolist() == [0, 1, 2, 3]


def test_prune_keeps_efficient_fronts():
    scores = np.array([0.0, 0.3, 0.6, 1.0])
    costs = np.array([1.0, 2.0, 4.0, 8.0])
    front = pareto_front(scores, costs)
    assert prune_front(scores, costs, front).tolist() == [0, 1, 2, 3]
    # the top is never given away for a much worse cheaper point
    scores = np.array([0.0, 0.5, 1.0])
    costs = np.array([1.0, 2.0, 1e6])
    assert prune_front(scores, costs, pareto_front(scores, costs)).tolist() == [0, 1, 2]
    assert prune_front(scores[:2], costs[:2], np.array([0, 1])).tolist() == [0, 1]


def test_front_score_at_interpolates_in_log_cost():
    scores, costs = [0.0, 1.0, 0.2], [1.0, 100.0, 200.0]
    out = front_score_at(scores, costs, [0.5, 1.0, 10.0, 1000.0])
    assert out[0] == -np.inf
    assert out[1:].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert front_score_at([], [], [1.0]).tolist() == [-np.inf]


def test_hypervolume_against_grid_integration():
    rng = np.random.default_rng(1)
    scores, costs = rng.uniform(0, 1, 30), np.exp(rng.uniform(0, np.log(100), 30))
    hv = hypervolume(scores, costs, score_ref=0, score_max=1, cost_min=1, cost_max=100)
    grid = np.linspace(0, 1, 20001)[:-1] + 0.5 / 20000
    c = np.log(costs) / np.log(100)
    best = [max([s for s, ci in zip(scores, c) if ci <= g], default=0.0) for g in grid]
    assert hv == pytest.approx(float(np.mean(best)), abs=1e-3)
    assert 0 <= hv <= 1
    assert hypervolume([], [], score_ref=0, score_max=1, cost_min=1, cost_max=2) == 0.0
