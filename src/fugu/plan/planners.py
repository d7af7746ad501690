"""Sampling-based planners over action sequences: random shooting, CEM and MPPI.

A planner searches ``[horizon, action_dim]`` action sequences inside a Box for the one whose
rollout earns the most reward, given ``evaluate``: a function from a ``[population, horizon,
action_dim]`` array of candidate sequences to their ``[population]`` returns (the model does
the rollout and the reward aggregation). Model predictive control executes the first action of
the plan, then plans again one step later; each planner warm-starts from its previous plan
shifted by one step (the last step filled with the Box's centre).

- :class:`RandomShooting`: ``population`` uniform sequences plus the shifted previous best;
  the best one wins.
- :class:`CEM` (cross-entropy method): a diagonal Gaussian over sequences refitted for
  ``iterations`` rounds to the ``elites`` best samples (smoothed by ``momentum``); the best
  sequence seen is executed.
- :class:`MPPI`: the Gaussian's mean moves to the softmax-weighted average of the samples,
  weights ``exp((R - max R) / temperature)``.

Each planner keeps :attr:`Planner.last_ms` (wall-clock of its last :meth:`Planner.plan`) and
:attr:`Planner.evaluations` (sequences evaluated per call: population x iterations).

Example:
    >>> import numpy as np
    >>> target = np.array([0.3, -0.5])
    >>> def evaluate(seqs):  # the best sequence repeats `target`
    ...     return -((seqs - target) ** 2).sum(axis=(1, 2))
    >>> cem = CEM(low=[-1, -1], high=[1, 1], horizon=3, population=200, iterations=6, seed=0)
    >>> plan = cem.plan(evaluate)
    >>> bool(np.abs(plan - target).max() < 0.05)
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["CEM", "MPPI", "PLANNERS", "Evaluate", "Planner", "RandomShooting", "make_planner"]

Evaluate = Callable[[np.ndarray], np.ndarray]
"""``[population, horizon, action_dim]`` sequences -> ``[population]`` returns."""


class Planner:
    """Base: bounds, horizon, population, the warm-started plan and cost accounting.

    Args:
        low: Lower action bounds (``[action_dim]``).
        high: Upper action bounds.
        horizon: Steps per action sequence.
        population: Sequences sampled per iteration.
        iterations: Refinement rounds per plan (random shooting uses 1).
        seed: Seed of the planner's generator.
    """

    name: ClassVar[str] = "planner"

    def __init__(
        self,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        horizon: int,
        population: int = 256,
        iterations: int = 1,
        seed: int = 0,
    ) -> None:
        self.low = np.asarray(low, dtype=np.float64).reshape(-1)
        self.high = np.asarray(high, dtype=np.float64).reshape(-1)
        if self.low.shape != self.high.shape or not np.all(self.high > self.low):
            raise APIUsageError(f"planner bounds need low < high, got {low!r} and {high!r}")
        if not np.all(np.isfinite(self.low) & np.isfinite(self.high)):
            raise APIUsageError("planners need a bounded Box action space (finite low, high)")
        if horizon < 1 or population < 2 or iterations < 1:
            raise APIUsageError(
                f"need horizon >= 1, population >= 2, iterations >= 1; got {horizon}, "
                f"{population}, {iterations}"
            )
        self.horizon = int(horizon)
        self.population = int(population)
        self.iterations = int(iterations)
        self.action_dim = self.low.shape[0]
        self.rng = np.random.default_rng(seed)
        self.last_ms = 0.0
        self.centre = (self.low + self.high) / 2.0
        self.mean = np.tile(self.centre, (self.horizon, 1))
        self.best: np.ndarray | None = None

    @property
    def evaluations(self) -> int:
        """Sequences evaluated per :meth:`plan` call."""
        return self.population * self.iterations

    def reset(self) -> None:
        """Forget the warm start (call at the start of an episode)."""
        self.mean = np.tile(self.centre, (self.horizon, 1))
        self.best = None

    def plan(self, evaluate: Evaluate) -> np.ndarray:
        """The best ``[horizon, action_dim]`` sequence found; shifts the warm start after."""
        start = time.perf_counter()
        plan = self._search(evaluate)
        self.mean = np.concatenate([self.mean[1:], self.centre[None]], axis=0)
        self.best = np.concatenate([plan[1:], self.centre[None]], axis=0)
        self.last_ms = 1000.0 * (time.perf_counter() - start)
        return plan

    def act(self, evaluate: Evaluate) -> np.ndarray:
        """The first action of :meth:`plan` (``[action_dim]``, float32)."""
        return self.plan(evaluate)[0].astype(np.float32)

    def _search(self, evaluate: Evaluate) -> np.ndarray:
        raise NotImplementedError

    def _returns(self, evaluate: Evaluate, seqs: np.ndarray) -> np.ndarray:
        returns = np.asarray(evaluate(seqs), dtype=np.float64).reshape(-1)
        if returns.shape[0] != seqs.shape[0]:
            raise APIUsageError(
                f"evaluate returned {returns.shape[0]} returns for {seqs.shape[0]} sequences"
            )
        return np.where(np.isfinite(returns), returns, -np.inf)

    def _with_warm_start(self, seqs: np.ndarray) -> np.ndarray:
        if self.best is not None:
            seqs[0] = self.best
        return seqs


class RandomShooting(Planner):
    """Uniform random sequences (plus the shifted previous best); the best one wins."""

    name: ClassVar[str] = "rs"

    def _search(self, evaluate: Evaluate) -> np.ndarray:
        best, best_return = self.mean, -np.inf
        for _ in range(self.iterations):
            shape = (self.population, self.horizon, self.action_dim)
            seqs = self._with_warm_start(self.rng.uniform(self.low, self.high, shape))
            returns = self._returns(evaluate, seqs)
            k = int(np.argmax(returns))
            if returns[k] > best_return:
                best, best_return = seqs[k].copy(), returns[k]
        return best


class CEM(Planner):
    """The cross-entropy method over a diagonal Gaussian of sequences.

    Args:
        elites: Best samples each refit uses (default: a tenth of the population, >= 2).
        momentum: Weight of the old mean and std in each refit (0: replace).
        init_std: Starting std as a fraction of the Box's half-width.
        **kwargs: :class:`Planner` arguments.
    """

    name: ClassVar[str] = "cem"

    def __init__(
        self,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        horizon: int,
        population: int = 256,
        iterations: int = 5,
        seed: int = 0,
        *,
        elites: int | None = None,
        momentum: float = 0.1,
        init_std: float = 0.5,
    ) -> None:
        super().__init__(low, high, horizon, population, iterations, seed)
        self.elites = max(2, population // 10) if elites is None else int(elites)
        if not 2 <= self.elites <= population:
            raise APIUsageError(f"elites must lie in [2, population], got {self.elites}")
        if not 0.0 <= momentum < 1.0:
            raise APIUsageError(f"momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.init_std = float(init_std)

    def _sample(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        noise = self.rng.standard_normal((self.population, self.horizon, self.action_dim))
        return np.clip(mean + std * noise, self.low, self.high)

    def _search(self, evaluate: Evaluate) -> np.ndarray:
        mean = self.mean.copy()
        std = np.tile(self.init_std * (self.high - self.low) / 2.0, (self.horizon, 1))
        best, best_return = mean, -np.inf
        for _ in range(self.iterations):
            seqs = self._with_warm_start(self._sample(mean, std))
            returns = self._returns(evaluate, seqs)
            order = np.argsort(-returns)
            if returns[order[0]] > best_return:
                best, best_return = seqs[order[0]].copy(), returns[order[0]]
            elite = seqs[order[: self.elites]]
            m = self.momentum
            mean = m * mean + (1 - m) * elite.mean(axis=0)
            std = m * std + (1 - m) * elite.std(axis=0)
        self.mean = mean
        return best


class MPPI(Planner):
    """Model predictive path integral control: a return-weighted average of samples.

    Args:
        temperature: Softmax temperature on returns (smaller: greedier).
        noise_std: Sampling std as a fraction of the Box's half-width.
        **kwargs: :class:`Planner` arguments.
    """

    name: ClassVar[str] = "mppi"

    def __init__(
        self,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        horizon: int,
        population: int = 256,
        iterations: int = 3,
        seed: int = 0,
        *,
        temperature: float = 1.0,
        noise_std: float = 0.5,
    ) -> None:
        super().__init__(low, high, horizon, population, iterations, seed)
        if temperature <= 0:
            raise APIUsageError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.noise_std = float(noise_std)

    def _search(self, evaluate: Evaluate) -> np.ndarray:
        mean = self.mean.copy()
        std = self.noise_std * (self.high - self.low) / 2.0
        for _ in range(self.iterations):
            noise = self.rng.standard_normal((self.population, self.horizon, self.action_dim))
            seqs = np.clip(mean + std * noise, self.low, self.high)
            seqs[0] = mean
            returns = self._returns(evaluate, seqs)
            finite = np.isfinite(returns)
            if not finite.any():
                break
            top = returns[finite].max()
            weights = np.where(finite, np.exp((returns - top) / self.temperature), 0.0)
            weights /= weights.sum()
            mean = np.einsum("p,pha->ha", weights, seqs)
        self.mean = mean
        return mean


PLANNERS: dict[str, type[Planner]] = {"rs": RandomShooting, "cem": CEM, "mppi": MPPI}


def make_planner(
    name: str,
    low: Sequence[float] | np.ndarray,
    high: Sequence[float] | np.ndarray,
    horizon: int,
    population: int = 256,
    iterations: int | None = None,
    seed: int = 0,
) -> Planner:
    """Build a planner by name (``rs``, ``cem``, ``mppi``) with its default iterations."""
    if name not in PLANNERS:
        raise APIUsageError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    cls = PLANNERS[name]
    if iterations is None:
        iterations = {"rs": 1, "cem": 5, "mppi": 3}[name]
    return cls(low, high, horizon, population, iterations, seed)
