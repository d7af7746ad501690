"""Benchmark of the searchers on synthetic cost-aware problems with known optima.

Each problem has hyperparameters ``x`` and a budget ``b`` (the cost): a run with budget ``b``
reaches ``score = f(x) * (1 - exp(-b / tau))`` (plus a little noise), observed at 25, 50, 75 and
100% of its budget like a training run's checkpoints. ``f`` is a classic test function turned
into a score with a known maximum:

- ``branin``: ``1 / (1 + branin(x) - 0.397887)``, maximum 1 (2 parameters);
- ``hartmann6``: ``-hartmann6(x) / 3.32237``, maximum 1 (6 parameters).

Every searcher gets the same number of runs; we report the hypervolume of the score-cost front
(normalised score against normalised log cost, in [0, 1]) and the best score reached under a
cost cap, medians over seeds.

Example:
    >>> result = run_method(PROBLEMS["branin"], "random", seed=0, num_trials=5)
    >>> sorted(result)
    ['best_score_under_cap', 'hypervolume', 'seconds', 'total_cost']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.hpo.methods import METHODS, make_searcher
from fugu.hpo.pareto import hypervolume
from fugu.hpo.protein import Protein
from fugu.hpo.searchers import RandomSearcher
from fugu.hpo.spaces import Log, SearchSpace, Uniform

__all__ = [
    "METHODS",
    "PROBLEMS",
    "Problem",
    "cartpole_sweep",
    "compare_gp_backends",
    "run_benchmark",
    "run_method",
    "suggest_latency",
]

_HARTMANN_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_HARTMANN_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin_score(x: np.ndarray) -> float:
    """``1 / (1 + branin(x) - min)`` on ``[-5, 10] x [0, 15]``; maximum 1."""
    x1, x2 = float(x[0]), float(x[1])
    value = (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
    value += 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
    return 1.0 / (1.0 + value - 0.397887)


def hartmann6_score(x: np.ndarray) -> float:
    """``-hartmann6(x) / 3.32237`` on ``[0, 1]^6``; maximum 1."""
    inner = np.sum(_HARTMANN_A * (np.asarray(x)[None, :] - _HARTMANN_P) ** 2, axis=1)
    return float(np.sum(_HARTMANN_ALPHA * np.exp(-inner))) / 3.32237


@dataclass(frozen=True)
class Problem:
    """A cost-aware synthetic problem: ``score = f(x) * (1 - exp(-budget / tau))``, cost = budget.

    Attributes:
        name: Problem name.
        space: Hyperparameters, with the budget ``"budget"`` (log-uniform).
        function: ``f`` on the vector of non-budget parameters (in space order).
        tau: Budget at which 63% of ``f`` is reached.
        cost_cap: Cap of the "best score under a cost cap" figure.
        noise: Standard deviation of the observation noise.
    """

    name: str
    space: SearchSpace
    function: Callable[[np.ndarray], float]
    tau: float = 15.0
    cost_cap: float = 30.0
    noise: float = 0.005

    def checkpoints(
        self, params: dict[str, Any], rng: np.random.Generator
    ) -> Iterator[tuple[dict[str, Any], float, float]]:
        """The (params at budget reached, score, cost) of a run at 25/50/75/100% of its budget."""
        x = np.array([params[n] for n in self.space.names if n != "budget"], np.float64)
        f = self.function(x)
        budget = float(params["budget"])
        for fraction in (0.25, 0.5, 0.75, 1.0):
            steps = budget * fraction
            score = f * (1.0 - math.exp(-steps / self.tau)) + self.noise * rng.normal()
            yield {**params, "budget": steps}, score, steps


def _space(bounds: list[tuple[float, float]]) -> SearchSpace:
    spaces: dict[str, Any] = {f"x{i}": Uniform(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    spaces["budget"] = Log(1.0, 100.0)
    return SearchSpace(spaces, budget="budget")


PROBLEMS: dict[str, Problem] = {
    "branin": Problem("branin", _space([(-5.0, 10.0), (0.0, 15.0)]), branin_score),
    "hartmann6": Problem("hartmann6", _space([(0.0, 1.0)] * 6), hartmann6_score),
}


def run_method(problem: Problem, method: str, seed: int, num_trials: int) -> dict[str, float]:
    """Run one searcher for ``num_trials`` runs on ``problem``; return its figures."""
    searcher = make_searcher(method, problem.space, seed)
    rng = np.random.default_rng(10_000 + seed)
    start = time.perf_counter()
    total_cost = 0.0
    for _ in range(num_trials):
        params = searcher.suggest()
        for point, score, cost in problem.checkpoints(params, rng):
            searcher.observe(point, score, cost)
            spent = cost
            if searcher.should_stop(point, score, cost):
                break
        total_cost += spent
    seconds = time.perf_counter() - start
    scores = np.array([o.score for o in searcher.observations])
    costs = np.array([o.cost for o in searcher.observations])
    budget_space = problem.space.spaces["budget"]
    under_cap = scores[costs <= problem.cost_cap]
    return {
        "hypervolume": hypervolume(
            scores,
            costs,
            score_ref=0.0,
            score_max=1.0,
            cost_min=budget_space.min,
            cost_max=budget_space.max,
        ),
        "best_score_under_cap": float(under_cap.max()) if len(under_cap) else 0.0,
        "total_cost": total_cost,
        "seconds": seconds,
    }


def run_benchmark(
    problems: list[str] | None = None,
    methods: list[str] | None = None,
    *,
    num_seeds: int = 5,
    num_trials: int = 60,
) -> Iterator[dict[str, Any]]:
    """Yield one result dict per (problem, method): medians over ``num_seeds`` seeds."""
    for name in problems or list(PROBLEMS):
        if name not in PROBLEMS:
            raise APIUsageError(f"unknown problem {name!r}; use one of {list(PROBLEMS)}")
        for method in methods or list(METHODS):
            runs = [run_method(PROBLEMS[name], method, s, num_trials) for s in range(num_seeds)]
            hv = [r["hypervolume"] for r in runs]
            yield {
                "problem": name,
                "method": method,
                "num_seeds": num_seeds,
                "num_trials": num_trials,
                "hypervolume_median": float(np.median(hv)),
                "hypervolume_min": float(np.min(hv)),
                "best_score_under_cap_median": float(
                    np.median([r["best_score_under_cap"] for r in runs])
                ),
                "cost_cap": PROBLEMS[name].cost_cap,
                "seconds_median": float(np.median([r["seconds"] for r in runs])),
            }


def suggest_latency(num_observations: int = 200, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Seconds one Protein suggestion takes with ``num_observations`` observations (hartmann6)."""
    problem = PROBLEMS["hartmann6"]
    protein = Protein(problem.space, seed=seed)
    sampler = RandomSearcher(problem.space, seed=seed)
    rng = np.random.default_rng(seed)
    while len(protein.observations) < num_observations:
        for point, score, cost in problem.checkpoints(sampler.suggest(), rng):
            if len(protein.observations) < num_observations:
                protein.observe(point, score, cost)
    protein.num_suggestions = protein.num_warmup
    protein.suggest()  # first fit (cold start), not timed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        protein.suggest()
        times.append(time.perf_counter() - start)
    return {
        "problem": "suggest_latency",
        "observations": num_observations,
        "seconds": float(np.median(times)),
    }


def compare_gp_backends(num_points: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Fit fugu's GP and gpytorch's equivalent on the same hartmann6 data; time and test error.

    Both use a linear + Matern-1.5 ARD kernel, a constant mean, standardised targets and 100 Adam
    steps (lr 0.1), then predict 1000 test points. Returns one dict per backend.
    """
    import torch

    from fugu.hpo.gp import GaussianProcess

    rng = np.random.default_rng(seed)
    dim = 6
    x = rng.uniform(-1, 1, (num_points, dim))
    x_test = rng.uniform(-1, 1, (1000, dim))

    def target(z: np.ndarray) -> np.ndarray:
        return np.array([hartmann6_score((row + 1) / 2) for row in z])

    y, y_test = target(x) + 0.01 * rng.normal(size=num_points), target(x_test)
    results = []
    gp = GaussianProcess(dim)
    start = time.perf_counter()
    gp.fit(x, y, iterations=100)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    mean, _ = gp.predict(x_test)
    predict_s = time.perf_counter() - start
    results.append(
        {
            "problem": "gp_backend",
            "backend": "fugu",
            "points": num_points,
            "fit_seconds": fit_s,
            "predict_seconds": predict_s,
            "test_rmse": float(np.sqrt(np.mean((mean - y_test) ** 2))),
        }
    )
    try:
        import gpytorch
    except ImportError:  # pragma: no cover - gpytorch is in the dev extras
        return results
    xt = torch.as_tensor(x)
    y_mean, y_std = float(y.mean()), float(y.std())
    yt = torch.as_tensor((y - y_mean) / y_std)

    class _Model(gpytorch.models.ExactGP):  # type: ignore[misc]
        def __init__(self, likelihood: Any) -> None:
            super().__init__(xt, yt, likelihood)
            self.mean_module = gpytorch.means.ConstantMean()
            self.covar_module = (
                gpytorch.kernels.ScaleKernel(
                    gpytorch.kernels.MaternKernel(nu=1.5, ard_num_dims=dim)
                )
                + gpytorch.kernels.LinearKernel()
            )

        def forward(self, z: Any) -> Any:
            return gpytorch.distributions.MultivariateNormal(
                self.mean_module(z), self.covar_module(z)
            )

    likelihood = gpytorch.likelihoods.GaussianLikelihood(
        noise_prior=gpytorch.priors.LogNormalPrior(math.log(1e-2), 1.5)
    ).double()
    model = _Model(likelihood).double()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    likelihood.train()
    start = time.perf_counter()
    for _ in range(100):
        optimizer.zero_grad()
        loss = -mll(model(xt), yt)
        loss.backward()
        optimizer.step()
    fit_s = time.perf_counter() - start
    model.eval()
    likelihood.eval()
    start = time.perf_counter()
    with torch.no_grad(), gpytorch.settings.fast_pred_var():
        pred = model(torch.as_tensor(x_test)).mean.numpy() * y_std + y_mean
    predict_s = time.perf_counter() - start
    results.append(
        {
            "problem": "gp_backend",
            "backend": "gpytorch",
            "points": num_points,
            "fit_seconds": fit_s,
            "predict_seconds": predict_s,
            "test_rmse": float(np.sqrt(np.mean((pred - y_test) ** 2))),
        }
    )
    return results


def cartpole_sweep(
    sweep_dir: str | Path,
    max_runs: int = 20,
    seed: int = 0,
    method: str = "protein",
    cost: str = "seconds",
) -> Iterator[dict[str, Any]]:
    """A real sweep on cartpole-v1, then the best config against the preset.

    Runs ``max_runs`` training trials (``cost``: ``"seconds"``, what "faster" means, or
    ``"steps"``, deterministic), then trains the preset and the sweep's ``best.toml`` once each
    with the same seed and yields their time and steps to solve.
    """
    from fugu.hpo.spaces import SearchSpace
    from fugu.hpo.sweep import run_sweep
    from fugu.hpo.train_trial import make_train_trial
    from fugu.train.experiment import ExperimentConfig
    from fugu.train.run import train

    directory = Path(sweep_dir)
    no_logs = {"logging.tensorboard": False, "logging.wandb": False}
    base = ExperimentConfig.from_preset("cartpole-v1", no_logs)
    space = SearchSpace.from_dict(base.sweep)
    kwargs: dict[str, Any] = {}
    if method == "protein":  # start from the preset's values, as `fugu sweep` does
        flat = base.to_dict()
        kwargs["initial"] = {n: flat[n.split(".")[0]][n.split(".")[1]] for n in space.names}
    searcher = make_searcher(method, space, seed, **kwargs)
    trial = make_train_trial(base, directory / "trials", cost=cost)
    config = {k: v for k, v in base.to_dict().items() if k != "sweep"}
    start = time.perf_counter()
    result = run_sweep(searcher, trial, directory, max_runs, base_config=config)
    yield {
        "problem": "cartpole_sweep",
        "method": method,
        "cost": cost,
        "trials": result.num_trials,
        "failures": len(result.failures),
        "best_score": None if result.best is None else result.best.score,
        "best_cost": None if result.best is None else result.best.cost,
        "best_params": None if result.best is None else result.best.params,
        "seconds": time.perf_counter() - start,
    }
    candidates = {
        "preset": base,
        "best": ExperimentConfig.from_preset("cartpole-v1", no_logs, preset=result.paths["toml"]),
    }
    for name, config_ in candidates.items():
        summary = train(config_, run_dir=directory / f"check-{name}", quiet=True)
        yield {
            "problem": "cartpole_solve",
            "config": name,
            "solved": summary.solved,
            "time_to_solve_s": summary.time_to_solve_s,
            "steps_to_solve": summary.steps_to_solve,
            "final_return": summary.final_return,
            "wall_s": summary.wall_s,
        }
