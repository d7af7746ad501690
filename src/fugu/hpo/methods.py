"""Searchers by name: ``protein``, ``random``, ``sobol``, ``optuna`` (TPE).

Importing this module is cheap (the CLI's ``--help`` reads :data:`METHODS`); each searcher's
module is imported when it is built.

Example:
    >>> from fugu.hpo.spaces import SearchSpace, Uniform
    >>> type(make_searcher("sobol", SearchSpace({"x": Uniform(0, 1)}), seed=0)).__name__
    'SobolSearcher'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fugu.core.errors import APIUsageError

if TYPE_CHECKING:  # pragma: no cover
    from fugu.hpo.searchers import Searcher
    from fugu.hpo.spaces import SearchSpace

__all__ = ["METHODS", "make_searcher"]

METHODS = ("protein", "random", "sobol", "optuna")
"""The names :func:`make_searcher` accepts."""


def make_searcher(method: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> Searcher:
    """Build a searcher by name; ``kwargs`` go to :class:`~fugu.hpo.protein.Protein` only.

    Raises:
        APIUsageError: For an unknown method.
        MissingDependencyError: For ``optuna`` when optuna is not installed.
    """
    from fugu.hpo.searchers import RandomSearcher, SobolSearcher

    if method == "protein":
        from fugu.hpo.protein import Protein  # imports torch: only when asked for

        return Protein(space, seed=seed, **kwargs)
    if method == "random":
        return RandomSearcher(space, seed=seed)
    if method == "sobol":
        return SobolSearcher(space, seed=seed)
    if method == "optuna":
        from fugu.hpo.optuna_bridge import OptunaSearcher

        return OptunaSearcher(space, seed=seed)
    raise APIUsageError(f"unknown search method {method!r}; use one of {list(METHODS)}")
