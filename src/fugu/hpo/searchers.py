"""The ask/tell interface every searcher shares, and the Random and Sobol baselines.

A searcher proposes hyperparameters with :meth:`Searcher.suggest` and learns from
:meth:`Searcher.observe` (a score, higher is better, and the cost paid to reach it) and
:meth:`Searcher.observe_failure` (the run crashed or diverged). One run may be observed several
times along its budget axis: at each checkpoint, with the budget parameter set to the steps
reached. :meth:`Searcher.should_stop` lets a cost-aware searcher end hopeless runs early.

Example:
    >>> from fugu.hpo.spaces import Log, SearchSpace
    >>> searcher = RandomSearcher(SearchSpace({"lr": Log(1e-4, 1e-2)}), seed=0)
    >>> params = searcher.suggest()
    >>> searcher.observe(params, score=1.0, cost=10.0)
    >>> searcher.best().score
    1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.hpo.pareto import pareto_front
from fugu.hpo.spaces import SearchSpace

__all__ = ["Observation", "RandomSearcher", "Searcher", "SobolSearcher"]


@dataclass(frozen=True)
class Observation:
    """One measured point: the params it ran with, the score reached and the cost paid.

    ``params`` carry the budget reached (an intermediate report of a longer run has its steps
    so far); ``run`` holds the params of the whole run the point came from, when known (a
    mid-run point of a 1.5M-step cosine schedule is not a 600k-step run).
    """

    params: dict[str, Any]
    score: float
    cost: float
    unit: np.ndarray = field(repr=False, compare=False)
    run: dict[str, Any] | None = field(default=None, repr=False, compare=False)


class Searcher:
    """Base class: stores observations and failures; subclasses implement :meth:`suggest`.

    Args:
        space: The hyperparameters to search.
        seed: Seed of the searcher's own random generator (no global RNG is used).
    """

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.observations: list[Observation] = []
        self.failures: list[dict[str, Any]] = []
        self.num_suggestions = 0

    def suggest(self) -> dict[str, Any]:
        """Propose the hyperparameters of the next run."""
        raise NotImplementedError

    def observe(self, params: Mapping[str, Any], score: float, cost: float) -> None:
        """Record that ``params`` reached ``score`` (higher is better) at ``cost`` (> 0).

        A non-finite score is recorded as a failure instead.

        Raises:
            APIUsageError: If the cost is not a positive finite number.
        """
        if not math.isfinite(float(score)):
            self.observe_failure(params)
            return
        if not (math.isfinite(float(cost)) and float(cost) > 0):
            raise APIUsageError(f"observe: cost must be a positive finite number, got {cost}")
        self.observations.append(
            Observation(dict(params), float(score), float(cost), self.space.to_unit(params))
        )

    def observe_failure(self, params: Mapping[str, Any]) -> None:
        """Record that a run with ``params`` crashed or produced a non-finite score."""
        self.failures.append(dict(params))

    def should_stop(self, params: Mapping[str, Any], score: float, cost: float) -> bool:
        """Whether a run at ``score`` after ``cost`` should be stopped early (never, here)."""
        return False

    def resume(self, num_suggestions: int) -> None:
        """Continue after ``num_suggestions`` earlier suggestions (replayed from a saved sweep).

        Sequence-based searchers skip that many points so a resumed sweep does not repeat them.
        """
        self.num_suggestions = max(self.num_suggestions, int(num_suggestions))

    def best(self) -> Observation:
        """The observation with the highest score (the cheapest among ties).

        Raises:
            APIUsageError: If nothing was observed yet.
        """
        if not self.observations:
            raise APIUsageError("no successful observation yet: observe() some runs first")
        return max(self.observations, key=lambda o: (o.score, -o.cost))

    def pareto(self) -> list[Observation]:
        """The observations on the score-cost Pareto front, by increasing cost."""
        scores = [o.score for o in self.observations]
        costs = [o.cost for o in self.observations]
        return [self.observations[i] for i in pareto_front(scores, costs)]


class RandomSearcher(Searcher):
    """Uniform random search in the normalised cube (every parameter, the budget included).

    Example:
        >>> from fugu.hpo.spaces import Uniform, SearchSpace
        >>> a = RandomSearcher(SearchSpace({"x": Uniform(0, 1)}), seed=3).suggest()
        >>> b = RandomSearcher(SearchSpace({"x": Uniform(0, 1)}), seed=3).suggest()
        >>> a == b
        True
    """

    def suggest(self) -> dict[str, Any]:
        """A uniformly random point of the space."""
        self.num_suggestions += 1
        return self.space.from_unit(self.rng.uniform(-1.0, 1.0, self.space.dim))


class SobolSequence:
    """A scrambled, seeded Sobol sequence in [-1, 1]^d, drawn in blocks of powers of two."""

    def __init__(self, dim: int, seed: int) -> None:
        self.dim = dim
        self.seed = seed
        self._points = np.zeros((0, dim))
        self._index = 0

    def skip_to(self, index: int) -> None:
        """Continue the sequence at ``index`` (never goes back)."""
        self._index = max(self._index, int(index))

    def next(self) -> np.ndarray:
        """The next point of the sequence."""
        if self._index >= len(self._points):
            from scipy.stats import qmc

            m = max(4, math.ceil(math.log2(max(2 * len(self._points), self._index + 1))))
            sampler = qmc.Sobol(self.dim, scramble=True, seed=np.random.default_rng(self.seed))
            self._points = 2.0 * sampler.random_base2(m) - 1.0
        point = self._points[self._index]
        self._index += 1
        return point.copy()


class SobolSearcher(Searcher):
    """Quasi-random search: a scrambled Sobol sequence over the normalised cube.

    Example:
        >>> from fugu.hpo.spaces import Uniform, SearchSpace
        >>> searcher = SobolSearcher(SearchSpace({"x": Uniform(0, 1)}), seed=0)
        >>> xs = sorted(searcher.suggest()["x"] for _ in range(4))
        >>> [int(x * 4) for x in xs]  # one point in each quarter
        [0, 1, 2, 3]
    """

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self._sequence = SobolSequence(space.dim, seed)

    def resume(self, num_suggestions: int) -> None:
        """Skip the Sobol points already suggested before a resume."""
        super().resume(num_suggestions)
        self._sequence.skip_to(self.num_suggestions)

    def suggest(self) -> dict[str, Any]:
        """The next Sobol point."""
        self.num_suggestions += 1
        return self.space.from_unit(self._sequence.next())
