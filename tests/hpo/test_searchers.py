"""Random, Sobol and the Optuna bridge share the ask/tell interface."""

from __future__ import annotations

import builtins
import itertools

import numpy as np
import pytest

from fugu.core.errors import APIUsageError, MissingDependencyError
from fugu.hpo.methods import METHODS, make_searcher
from fugu.hpo.searchers import RandomSearcher, Searcher, SobolSearcher
from fugu.hpo.spaces import IntUniform, Log, SearchSpace, Uniform

SPACE = SearchSpace(
    {"lr": Log(1e-4, 1e-1), "epochs": IntUniform(1, 8), "steps": Log(10.0, 1000.0)},
    budget="steps",
)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_suggests_in_range_and_learns(method):
    searcher = make_searcher(method, SPACE, seed=0)
    for i in range(6):
        params = searcher.suggest()
        assert 1e-4 <= params["lr"] <= 1e-1 and 1 <= params["epochs"] <= 8
        assert isinstance(params["epochs"], int)
        searcher.observe({**params, "steps": params["steps"] / 2}, float(i) - 0.5, 5.0)
        searcher.observe(params, float(i), params["steps"])
    searcher.observe_failure(searcher.suggest())
    assert len(searcher.observations) == 12 and len(searcher.failures) == 1
    assert searcher.best().score == 5.0
    front = searcher.pareto()
    assert all(a.cost < b.cost and a.score < b.score for a, b in itertools.pairwise(front))
    assert not searcher.should_stop(params, -100.0, 1.0)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_deterministic(method):
    def sequence():
        searcher = make_searcher(method, SPACE, seed=7)
        out = []
        for i in range(4):
            params = searcher.suggest()
            searcher.observe(params, float(i % 3), params["steps"])
            out.append(params)
        return out

    assert sequence() == sequence()


def test_sobol_covers_the_space_evenly():
    searcher = SobolSearcher(SearchSpace({"x": Uniform(0, 1), "y": Uniform(0, 1)}), seed=1)
    points = np.array([[p["x"], p["y"]] for p in (searcher.suggest() for _ in range(64))])
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=4, range=[[0, 1], [0, 1]])
    assert counts.min() == counts.max() == 4  # a (t, m, s)-net: 4 points in each cell
    more = [searcher.suggest() for _ in range(40)]  # past the first block
    assert len({p["x"] for p in more}) == 40


def test_sobol_resume_skips_points():
    a = SobolSearcher(SPACE, seed=0)
    points = [a.suggest() for _ in range(5)]
    b = SobolSearcher(SPACE, seed=0)
    b.resume(3)
    assert b.suggest() == points[3] and b.num_suggestions == 4


def test_base_class_and_errors():
    with pytest.raises(NotImplementedError):
        Searcher(SPACE).suggest()
    with pytest.raises(APIUsageError, match="no successful"):
        RandomSearcher(SPACE).best()
    with pytest.raises(APIUsageError, match="unknown search method"):
        make_searcher("grid", SPACE)


def test_optuna_bridge_tells_trials():
    import optuna

    searcher = make_searcher("optuna", SPACE, seed=0)
    params = searcher.suggest()
    searcher.observe({**params, "steps": 20.0}, 0.5, 20.0)  # intermediate: an added trial
    searcher.observe(params, 1.0, params["steps"])  # final: completes the asked trial
    failed = searcher.suggest()
    searcher.observe_failure(failed)
    states = [t.state for t in searcher.study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert searcher.study.best_value == 1.0


def test_optuna_bridge_samplers():
    from fugu.hpo.optuna_bridge import OptunaSearcher

    assert OptunaSearcher(SPACE, sampler="random").suggest()
    with pytest.raises(APIUsageError, match="sampler"):
        OptunaSearcher(SPACE, sampler="grid")


def test_optuna_missing_dependency(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("no optuna")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    from fugu.hpo.optuna_bridge import OptunaSearcher

    with pytest.raises(MissingDependencyError, match=r"fugu-rl\[hpo\]"):
        OptunaSearcher(SPACE)
