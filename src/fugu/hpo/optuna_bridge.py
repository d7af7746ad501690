"""An Optuna searcher (TPE by default) behind fugu's ask/tell interface.

Optuna samples every coordinate of the normalised cube ``[-1, 1]^d`` (so log, pow2 and logit
ranges get the same treatment as in Protein), and fugu maps the point back to values. A run's
final observation (the one with the suggested params) completes its Optuna trial; intermediate
observations along the budget axis are added to the study as extra completed trials.
Optuna is imported lazily: without it, constructing the searcher raises
:class:`~fugu.core.errors.MissingDependencyError`.

Example:
    >>> from fugu.hpo.spaces import Log, SearchSpace
    >>> searcher = OptunaSearcher(SearchSpace({"lr": Log(1e-4, 1e-2)}), seed=0)
    >>> params = searcher.suggest()
    >>> searcher.observe(params, score=1.0, cost=1.0)
    >>> len(searcher.study.trials)
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fugu.core.errors import APIUsageError, missing_dependency
from fugu.hpo.searchers import Searcher
from fugu.hpo.spaces import SearchSpace

__all__ = ["OptunaSearcher"]


class OptunaSearcher(Searcher):
    """Optuna's sampler (TPE by default) as a fugu searcher.

    Args:
        space: The hyperparameters to search.
        seed: Seed of the Optuna sampler.
        sampler: ``"tpe"`` or ``"random"`` (Optuna's own), or an ``optuna.samplers.BaseSampler``.

    Raises:
        MissingDependencyError: If optuna is not installed.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, sampler: Any = "tpe") -> None:
        super().__init__(space, seed)
        try:
            import optuna
        except ImportError as error:  # pragma: no cover - optuna is in the dev extras
            raise missing_dependency("optuna", "hpo") from error
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if sampler == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed)
        elif sampler == "random":
            sampler = optuna.samplers.RandomSampler(seed=seed)
        elif not isinstance(sampler, optuna.samplers.BaseSampler):
            raise APIUsageError(
                f"sampler must be 'tpe', 'random' or an optuna sampler: {sampler!r}"
            )
        self._optuna = optuna
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._distributions: dict[str, Any] = {
            f"z{i}": optuna.distributions.FloatDistribution(-1.0, 1.0) for i in range(space.dim)
        }
        self._pending: dict[tuple[Any, ...], Any] = {}

    def suggest(self) -> dict[str, Any]:
        """Ask Optuna for a trial and map it to params."""
        self.num_suggestions += 1
        trial = self.study.ask(self._distributions)
        z = [trial.params[f"z{i}"] for i in range(self.space.dim)]
        params = self.space.from_unit(z)  # type: ignore[arg-type]
        self._pending[self.space.key(params)] = trial
        return params

    def observe(self, params: Mapping[str, Any], score: float, cost: float) -> None:
        """Record the observation; tell Optuna (completing the run's trial if it is its own)."""
        before = len(self.observations)
        super().observe(params, score, cost)
        if len(self.observations) == before:  # recorded as a failure
            return
        trial = self._pending.pop(self.space.key(params), None)
        if trial is not None:
            self.study.tell(trial, float(score))
            return
        unit = self.observations[-1].unit
        self.study.add_trial(
            self._optuna.trial.create_trial(
                params={f"z{i}": float(v) for i, v in enumerate(unit)},
                distributions=self._distributions,
                value=float(score),
            )
        )

    def observe_failure(self, params: Mapping[str, Any]) -> None:
        """Record the failure and mark the run's Optuna trial as failed."""
        super().observe_failure(params)
        trial = self._pending.pop(self.space.key(params), None)
        if trial is not None:
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
