"""Planners find known optima; CEM with the true pendulum swings it up; warm starts shift."""

from __future__ import annotations

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.envs.pendulum import Pendulum
from fugu.plan import CEM, MPC, MPPI, RandomShooting, TrueModel, make_planner, run_mpc


def _quadratic(target: np.ndarray):
    def evaluate(seqs: np.ndarray) -> np.ndarray:
        return -((seqs - target) ** 2).sum(axis=(1, 2))

    return evaluate


@pytest.mark.parametrize("cls", [CEM, MPPI])
def test_gaussian_planners_find_a_quadratic_optimum(cls: type) -> None:
    target = np.array([0.4, -0.7])
    extra = {"temperature": 0.05} if cls is MPPI else {}
    planner = cls([-1, -1], [1, 1], horizon=4, population=300, iterations=8, seed=0, **extra)
    plan = planner.plan(_quadratic(target))
    assert plan.shape == (4, 2)
    tolerance = 0.2 if cls is MPPI else 0.08  # MPPI's mean is an average of noisy samples
    assert np.abs(plan - target).max() < tolerance


def test_cem_beats_random_shooting_on_a_1d_toy() -> None:
    target = np.array([0.123])
    errs = {}
    for name in ("cem", "rs"):
        planner = make_planner(name, [-1], [1], horizon=1, population=30, iterations=5, seed=1)
        errs[name] = np.abs(planner.plan(_quadratic(target)) - target).max()
    assert errs["cem"] < 0.005 and errs["cem"] < errs["rs"] / 2


def test_plans_respect_bounds_and_warm_start_shifts() -> None:
    planner = CEM([-2.0], [2.0], horizon=5, population=50, iterations=3, seed=0)
    plan = planner.plan(_quadratic(np.array([5.0])))  # optimum outside the Box
    assert np.all(plan <= 2.0) and np.all(plan >= -2.0) and plan.mean() > 1.0
    assert planner.best is not None
    np.testing.assert_array_equal(planner.best[:-1], plan[1:])
    assert planner.best[-1, 0] == 0.0  # the Box's centre fills the new last step
    assert planner.evaluations == 150 and planner.last_ms > 0
    planner.reset()
    assert planner.best is None


def test_random_shooting_keeps_the_shifted_best() -> None:
    planner = RandomShooting([-1], [1], horizon=3, population=20, seed=0)
    target = np.array([0.5])
    first = planner.plan(_quadratic(target))
    second = planner.plan(_quadratic(target))
    score = _quadratic(target)
    assert score(second[None]) >= score(np.concatenate([first[1:], [[0.0]]])[None])


def test_seeded_planners_repeat() -> None:
    plans = [CEM([-1], [1], 4, 40, 2, seed=7).plan(_quadratic(np.array([0.2]))) for _ in "ab"]
    np.testing.assert_array_equal(*plans)


def test_bad_arguments() -> None:
    with pytest.raises(APIUsageError, match="low < high"):
        CEM([1.0], [-1.0], 3)
    with pytest.raises(APIUsageError, match="bounded"):
        CEM([-np.inf], [np.inf], 3)
    with pytest.raises(APIUsageError, match="unknown planner"):
        make_planner("nope", [-1], [1], 3)
    with pytest.raises(APIUsageError, match="returns"):
        CEM([-1], [1], 3, 10).plan(lambda s: np.zeros(3))


def _pendulum_return(planner_name: str | None, seed: int) -> float:
    env = Pendulum(num_envs=1, seed=seed)
    env.reset()
    env.state["physics"][0] = [np.pi, 0.0]  # hanging straight down: the hardest start
    if planner_name is None:
        rng = np.random.default_rng(seed)
        controller = lambda e, o: rng.uniform(-2, 2, 1).astype(np.float32)  # noqa: E731
    else:
        planner = make_planner(planner_name, [-2.0], [2.0], 25, population=120, seed=seed)
        controller = MPC(planner, TrueModel()).act
    return run_mpc(env, controller, 200)[0]


def test_cem_with_the_true_pendulum_swings_it_up() -> None:
    cem = _pendulum_return("cem", 0)
    rand = _pendulum_return(None, 0)
    assert cem > -450 and cem > rand + 500
