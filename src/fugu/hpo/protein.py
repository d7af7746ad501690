"""Protein: cost-aware Bayesian hyperparameter search along the score-cost Pareto front.

Protein does not look for one best point: it looks for the best score at every cost, so that
cheap runs teach it where good hyperparameters live and expensive runs are only spent where they
pay. Each suggestion:

1. warm-up: the first ``num_warmup`` runs come from a seeded scrambled Sobol sequence, with the
   budget parameter squeezed into its cheapest ``warmup_budget`` fraction;
2. fits two Gaussian processes (:class:`~fugu.hpo.gp.GaussianProcess`, warm-started) on every
   successful observation: one on the score normalised to [0, 1], one on the log cost normalised
   to [0, 1];
3. takes the Pareto front of score against cost and prunes its inefficient expensive tail
   (:func:`~fugu.hpo.pareto.prune_front`);
4. samples candidates in a box around each front point, around the best points with their budget
   reduced, plus a few uniform ones;
5. draws a target cost, stratified over suggestions (each block of ``num_strata`` suggestions
   covers every stratum of the reachable log-cost range once), and picks the candidate that
   maximises ``predicted score * closeness to the target cost`` among those whose predicted cost
   stays under ``max_cost``.

Example:
    >>> from fugu.hpo.spaces import Log, SearchSpace, Uniform
    >>> space = SearchSpace({"x": Uniform(-2, 2), "steps": Log(1, 100)}, budget="steps")
    >>> protein = Protein(space, seed=0, num_warmup=4)
    >>> for _ in range(8):
    ...     p = protein.suggest()
    ...     protein.observe(p, score=(1 - 0.9 ** p["steps"]) - p["x"] ** 2, cost=p["steps"])
    >>> len(protein.observations)
    8
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fugu.core.errors import APIUsageError
from fugu.hpo.gp import GaussianProcess
from fugu.hpo.pareto import front_score_at, pareto_front, prune_front
from fugu.hpo.searchers import Searcher, SobolSequence
from fugu.hpo.spaces import SearchSpace

__all__ = ["Protein"]


class Protein(Searcher):
    """Cost-aware Pareto Bayesian search (ask/tell).

    Args:
        space: The hyperparameters; its ``budget`` parameter (if any) is the cost axis.
        seed: Seed of every random draw (Sobol scrambling, candidates, targets).
        num_warmup: Sobol runs before the first model-based suggestion
            (default ``max(8, 2 * dim)``).
        warmup_budget: Fraction of the budget's normalised range used by warm-up runs (they
            stay cheap).
        max_cost: Suggestions whose predicted cost exceeds this are never picked (``None``: no
            cap).
        search_scale: Half-width of the sampling box around each centre, in normalised units.
        num_candidates: Candidates sampled around each centre.
        num_random_candidates: Uniform candidates added to the pool.
        num_best: How many of the best points are also used as centres, at a reduced budget.
        num_strata: Strata of the target cost (one per suggestion, shuffled each block).
        exploration: Weight of the score GP's standard deviation added to its mean (an upper
            confidence bound; without it Protein can settle on a corner that a linear trend
            favours).
        early_stopping: Whether :meth:`should_stop` may stop runs.
        early_stop_tolerance: A run is stopped when its score is below the front's prediction at
            its cost by more than this fraction of the observed score range.
        max_gp_points: The GPs are fitted on at most this many observations: the Pareto front,
            then the best scores, then the most recent (keeps a suggestion well under a second).
        num_threads: Torch threads used while fitting (restored after each suggestion): the
            matrices are small, so one thread is fastest and leaves the cores to training.
            ``None`` leaves torch's setting alone.
        initial: Params of the first suggestion (clipped into the ranges), e.g. the preset's
            values, so that the sweep measures the starting point and searches around it.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        num_warmup: int | None = None,
        warmup_budget: float = 0.15,
        max_cost: float | None = None,
        search_scale: float = 0.25,
        num_candidates: int = 64,
        num_random_candidates: int = 128,
        num_best: int = 4,
        num_strata: int = 4,
        exploration: float = 1.0,
        early_stopping: bool = False,
        early_stop_tolerance: float = 0.25,
        max_gp_points: int = 128,
        num_threads: int | None = 1,
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, seed)
        if not 0 < warmup_budget <= 1:
            raise APIUsageError(f"warmup_budget must be in (0, 1], got {warmup_budget}")
        self.num_warmup = max(8, 2 * space.dim) if num_warmup is None else int(num_warmup)
        self.warmup_budget = warmup_budget
        self.max_cost = max_cost
        self.search_scale = search_scale
        self.num_candidates = num_candidates
        self.num_random_candidates = num_random_candidates
        self.num_best = num_best
        self.num_strata = num_strata
        self.exploration = exploration
        self.early_stopping = early_stopping
        self.early_stop_tolerance = early_stop_tolerance
        self.max_gp_points = max_gp_points
        self.num_threads = num_threads
        self.initial = None if initial is None else self.space.from_unit(space.to_unit(initial))
        self.gp_score = GaussianProcess(space.dim)
        self.gp_cost = GaussianProcess(space.dim)
        self._sobol = SobolSequence(space.dim, seed)
        self._strata: list[int] = []
        self.last_info: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ warm-up
    def _num_configs(self) -> int:
        keys = {self.space.key(o.params, without_budget=True) for o in self.observations}
        keys |= {self.space.key(p, without_budget=True) for p in self.failures}
        return len(keys)

    def _warmup_point(self) -> np.ndarray:
        z = self._sobol.next()
        b = self.space.budget_index
        if b is not None:
            z[b] = -1.0 + self.warmup_budget * (z[b] + 1.0)
        return z

    def resume(self, num_suggestions: int) -> None:
        """Skip the warm-up Sobol points already suggested before a resume."""
        super().resume(num_suggestions)
        self._sobol.skip_to(min(self.num_suggestions, self.num_warmup))

    def _target(self) -> float:
        if not self._strata:
            self._strata = [int(k) for k in self.rng.permutation(self.num_strata)]
        stratum = self._strata.pop()
        return (stratum + float(self.rng.uniform())) / self.num_strata

    # ------------------------------------------------------------------------------ suggest
    def suggest(self) -> dict[str, Any]:
        """Propose the next run's hyperparameters (see the module docstring for how)."""
        in_warmup = max(self.num_suggestions, self._num_configs()) < self.num_warmup
        self.num_suggestions += 1
        if self.initial is not None and self.num_suggestions == 1:
            self.last_info = {"phase": "initial"}
            return dict(self.initial)
        scores = np.array([o.score for o in self.observations], np.float64)
        if in_warmup or len(scores) < 2 or float(np.ptp(scores)) <= 0.0:
            self.last_info = {"phase": "warmup"}
            return self.space.from_unit(self._warmup_point())
        previous = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            return self.space.from_unit(self._model_point(scores))
        finally:
            torch.set_num_threads(previous)

    def _model_point(self, scores: np.ndarray) -> np.ndarray:
        x = np.stack([o.unit for o in self.observations])
        costs = np.array([o.cost for o in self.observations], np.float64)
        log_costs = np.log(costs)
        s_min, s_range = float(scores.min()), float(np.ptp(scores))
        c_min, c_range = float(log_costs.min()), max(float(np.ptp(log_costs)), 1e-9)
        front = pareto_front(scores, costs)
        kept = prune_front(scores, costs, front)
        fit = self._gp_subset(scores, front)
        self.gp_score.fit(x[fit], (scores[fit] - s_min) / s_range)
        self.gp_cost.fit(x[fit], (log_costs[fit] - c_min) / c_range)
        centres = [x[kept]]
        b = self.space.budget_index
        if b is not None and self.num_best > 0:
            best = np.argsort(-scores, kind="stable")[: self.num_best]
            reduced = x[best].copy()
            fraction = self.rng.uniform(0.2, 0.9, len(best))
            reduced[:, b] = -1.0 + fraction * (reduced[:, b] + 1.0)
            centres.append(reduced)
        centre = np.concatenate(centres)
        dim = self.space.dim
        offsets = self.rng.uniform(
            -self.search_scale, self.search_scale, (len(centre), self.num_candidates, dim)
        )
        local = np.clip(centre[:, None, :] + offsets, -1.0, 1.0)
        if b is not None:  # half of each centre's candidates try its neighbourhood at any budget
            resample = self.rng.uniform(size=local.shape[:2]) < 0.5
            local[:, :, b] = np.where(
                resample, self.rng.uniform(-1, 1, resample.shape), local[:, :, b]
            )
        local = local.reshape(-1, dim)
        uniform = self.rng.uniform(-1.0, 1.0, (self.num_random_candidates, dim))
        candidates = np.concatenate([local, uniform])

        score_mean, score_std = self.gp_score.predict(candidates)
        cost_mean, _ = self.gp_cost.predict(candidates)
        predicted_log_cost = cost_mean * c_range + c_min
        allowed = np.ones(len(candidates), bool)
        if self.max_cost is not None:
            allowed = predicted_log_cost <= math.log(self.max_cost)
            if not allowed.any():
                allowed = predicted_log_cost <= predicted_log_cost.min()
        # target: a stratified point of the reachable log-cost range
        low = min(c_min, float(predicted_log_cost[allowed].min()))
        high = max(float(predicted_log_cost[allowed].max()), low + 1e-9)
        target = self._target()
        position = (predicted_log_cost - low) / (high - low)
        closeness = np.clip(1.0 - np.abs(target - position), 0.0, 1.0)
        acquisition = np.clip(score_mean + self.exploration * score_std, 0.0, None) * closeness
        acquisition[~allowed] = -np.inf
        pick = int(np.argmax(acquisition))
        self.last_info = {
            "phase": "model",
            "target": target,
            "predicted_score": float(score_mean[pick] * s_range + s_min),
            "predicted_cost": float(math.exp(predicted_log_cost[pick])),
            "front_size": len(front),
            "pruned_front_size": len(kept),
        }
        return candidates[pick]

    def _gp_subset(self, scores: np.ndarray, front: np.ndarray) -> np.ndarray:
        n = len(scores)
        if n <= self.max_gp_points:
            return np.arange(n)
        order = [*front.tolist(), *np.argsort(-scores, kind="stable")[: self.max_gp_points // 4]]
        order += list(range(n - 1, -1, -1))
        chosen = list(dict.fromkeys(int(i) for i in order))[: self.max_gp_points]
        return np.sort(np.asarray(chosen, np.int64))

    # ------------------------------------------------------------------------------ early stop
    def should_stop(self, params: Mapping[str, Any], score: float, cost: float) -> bool:
        """Whether a run scoring ``score`` after ``cost`` is hopeless (only if early stopping).

        A run is stopped when its score is below what the Pareto front of the observations
        predicts at its cost (interpolated in log cost) by more than ``early_stop_tolerance``
        times the observed score range. Never before ``num_warmup`` observations, and never below
        the front's cheapest point. A non-finite score is always stopped.
        """
        if not math.isfinite(float(score)):
            return True
        if not self.early_stopping or len(self.observations) < self.num_warmup:
            return False
        scores = [o.score for o in self.observations]
        costs = [o.cost for o in self.observations]
        predicted = float(front_score_at(scores, costs, [cost])[0])
        if not math.isfinite(predicted):
            return False
        return float(score) < predicted - self.early_stop_tolerance * float(np.ptp(scores))
