"""Protein: warm-up, model suggestions, determinism, failures, early stopping, beats random."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.hpo.protein import Protein
from fugu.hpo.searchers import RandomSearcher
from fugu.hpo.spaces import Log, SearchSpace, Uniform


def make_space():
    return SearchSpace(
        {"x": Uniform(-1.0, 1.0), "y": Uniform(-1.0, 1.0), "steps": Log(1.0, 100.0)},
        budget="steps",
    )


def objective(params):
    """A quadratic bowl with its optimum off-centre, reached as the budget grows."""
    quality = math.exp(-((params["x"] - 0.4) ** 2 + (params["y"] + 0.3) ** 2) * 4)
    return quality * (1 - math.exp(-params["steps"] / 10))


def run(searcher, num_runs):
    for _ in range(num_runs):
        params = searcher.suggest()
        for fraction in (0.5, 1.0):
            point = {**params, "steps": params["steps"] * fraction}
            searcher.observe(point, objective(point), point["steps"])
    return searcher


def test_warmup_is_sobol_and_cheap():
    protein = Protein(make_space(), seed=0, num_warmup=6, warmup_budget=0.15)
    budgets = []
    for _ in range(6):
        params = protein.suggest()
        assert protein.last_info["phase"] == "warmup"
        budgets.append(params["steps"])
        protein.observe(params, objective(params), params["steps"])
    # the cheapest 15% of the log range [1, 100]: at most 100 ** 0.15
    assert max(budgets) <= 100**0.15 + 1e-9
    protein.suggest()
    assert protein.last_info["phase"] == "model"
    assert protein.last_info["pruned_front_size"] <= protein.last_info["front_size"]


def test_default_warmup_scales_with_dimension():
    assert Protein(make_space()).num_warmup == 8
    big = SearchSpace({f"x{i}": Uniform(0, 1) for i in range(6)})
    assert Protein(big).num_warmup == 12


def test_deterministic_given_seed():
    a = run(Protein(make_space(), seed=3, num_warmup=5), 12)
    b = run(Protein(make_space(), seed=3, num_warmup=5), 12)
    assert [o.params for o in a.observations] == [o.params for o in b.observations]
    c = run(Protein(make_space(), seed=4, num_warmup=5), 12)
    assert [o.params for o in a.observations] != [o.params for o in c.observations]


def test_finds_a_better_point_than_random():
    """Same number of runs, 3 seeds each: Protein's best score beats random search's on
    every seed (the margin is large, so this is not flaky)."""
    for seed in range(3):
        protein = run(Protein(make_space(), seed=seed, num_warmup=6), 24)
        random = run(RandomSearcher(make_space(), seed=seed), 24)
        assert protein.best().score > random.best().score


def test_failures_are_recorded_separately():
    protein = Protein(make_space(), seed=0, num_warmup=2)
    params = protein.suggest()
    protein.observe_failure(params)
    protein.observe(protein.suggest(), float("nan"), 1.0)  # NaN score: a failure too
    assert len(protein.failures) == 2 and protein.observations == []
    with pytest.raises(APIUsageError, match="cost"):
        protein.observe(params, 1.0, 0.0)
    # failures count as tried configs: the warm-up ends even though nothing succeeded yet
    params = protein.suggest()
    assert protein.last_info["phase"] == "warmup"  # < 2 successes: still Sobol


def test_max_cost_is_respected():
    protein = Protein(make_space(), seed=1, num_warmup=5, max_cost=10.0)
    run(protein, 5)
    for _ in range(5):
        params = protein.suggest()
        assert protein.last_info["predicted_cost"] <= 10.0 + 1e-6
        protein.observe(params, objective(params), params["steps"])


def test_should_stop_compares_with_the_front():
    protein = Protein(make_space(), seed=0, num_warmup=4, early_stopping=True)
    params = {"x": 0.4, "y": -0.3, "steps": 1.0}
    assert not protein.should_stop(params, 0.0, 5.0)  # too few observations
    for steps, score in [(1.0, 0.1), (5.0, 0.4), (20.0, 0.8), (50.0, 0.9)]:
        protein.observe({**params, "steps": steps}, score, steps)
    assert protein.should_stop(params, 0.1, 20.0)  # far below the front at that cost
    assert not protein.should_stop(params, 0.75, 20.0)  # within tolerance
    assert not protein.should_stop(params, 0.0, 0.5)  # cheaper than anything seen
    assert protein.should_stop(params, float("nan"), 20.0)
    off = Protein(make_space(), seed=0, num_warmup=4)
    off.observations = protein.observations
    assert not off.should_stop(params, 0.1, 20.0)


def test_resume_skips_warmup_points():
    a = Protein(make_space(), seed=0, num_warmup=8)
    first = [a.suggest() for _ in range(4)]
    b = Protein(make_space(), seed=0, num_warmup=8)
    b.resume(2)
    assert b.suggest() == first[2]


def test_bad_arguments():
    with pytest.raises(APIUsageError, match="warmup_budget"):
        Protein(make_space(), warmup_budget=0.0)


def test_gp_subset_keeps_front_and_caps_size():
    protein = Protein(make_space(), seed=0, num_warmup=4, max_gp_points=20)
    rng = np.random.default_rng(0)
    for _ in range(60):
        params = protein.space.from_unit(rng.uniform(-1, 1, 3))
        protein.observe(params, objective(params), params["steps"])
    protein.num_suggestions = 10
    protein.suggest()
    scores = np.array([o.score for o in protein.observations])
    from fugu.hpo.pareto import pareto_front

    front = pareto_front(scores, [o.cost for o in protein.observations])
    subset = protein._gp_subset(scores, front)
    assert len(subset) == 20 and set(front.tolist()) <= set(subset.tolist())


def test_initial_params_come_first_then_sobol():
    start = {"x": 0.4, "y": -0.3, "steps": 500.0}  # steps above the range: clipped
    protein = Protein(make_space(), seed=0, num_warmup=4, initial=start)
    first = protein.suggest()
    assert protein.last_info["phase"] == "initial"
    assert first == pytest.approx({"x": 0.4, "y": -0.3, "steps": 100.0})
    assert protein.suggest() == Protein(make_space(), seed=0, num_warmup=4).suggest()
