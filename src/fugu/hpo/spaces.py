"""Search spaces: each hyperparameter is mapped to the interval [-1, 1] and back.

Every searcher works in the normalised cube ``[-1, 1]^d``; a :class:`SearchSpace` turns a point of
the cube into a dict of hyperparameter values and back. Five distributions cover RL's knobs:

- ``uniform``: linear between ``min`` and ``max`` (clip coefficients, entropy coefficients);
- ``int_uniform``: integers, linear (number of epochs);
- ``log``: log-uniform (learning rates, total timesteps);
- ``pow2``: powers of two, log-uniform in the exponent (batch sizes, number of envs);
- ``logit``: values close to 1 (``gamma``, ``gae_lambda``): uniform in ``log(1 - value)``.

Example:
    >>> space = SearchSpace({"lr": Log(1e-4, 1e-2), "gamma": Logit(0.9, 0.999)})
    >>> z = space.to_unit({"lr": 1e-3, "gamma": 0.99})
    >>> [abs(round(float(v), 6)) for v in z]
    [0.0, 0.0]
    >>> {k: round(v, 6) for k, v in space.from_unit(z).items()}
    {'lr': 0.001, 'gamma': 0.99}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = [
    "DISTRIBUTIONS",
    "IntUniform",
    "Log",
    "Logit",
    "Pow2",
    "SearchSpace",
    "Space",
    "Uniform",
    "space_from_dict",
]


@dataclass(frozen=True)
class Space:
    """One hyperparameter's range, mapped linearly to [-1, 1] after a transform.

    Subclasses define ``_forward`` (value -> transformed) and ``_inverse`` (transformed -> value).

    Attributes:
        min: The smallest value of the range.
        max: The largest value of the range.
    """

    min: float
    max: float

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise APIUsageError(
                f"{type(self).__name__}: min ({self.min}) must be smaller than max ({self.max})"
            )

    def _forward(self, value: float) -> float:
        return float(value)

    def _inverse(self, value: float) -> float:
        return float(value)

    def normalize(self, value: float) -> float:
        """Map a value of the range to [-1, 1] (values outside the range are clipped)."""
        low, high = self._forward(self.min), self._forward(self.max)
        clipped = min(max(float(value), self.min), self.max)
        return float(np.clip(2.0 * (self._forward(clipped) - low) / (high - low) - 1.0, -1, 1))

    def denormalize(self, z: float) -> Any:
        """Map a point of [-1, 1] (clipped) back to a value of the range."""
        z = min(max(float(z), -1.0), 1.0)
        if z in (-1.0, 1.0):  # the bounds exactly, not exp(log(bound))
            return self.min if z < 0 else self.max
        low, high = self._forward(self.min), self._forward(self.max)
        t = low + (z + 1.0) / 2.0 * (high - low)
        return min(max(self._inverse(t), self.min), self.max)


@dataclass(frozen=True)
class Uniform(Space):
    """A float uniform between ``min`` and ``max``.

    Example:
        >>> Uniform(0.0, 1.0).denormalize(0.0)
        0.5
    """


@dataclass(frozen=True)
class IntUniform(Space):
    """An integer uniform between ``min`` and ``max`` (inclusive).

    Example:
        >>> IntUniform(1, 9).denormalize(0.0)
        5
    """

    def denormalize(self, z: float) -> int:
        """Map a point of [-1, 1] to the nearest integer of the range."""
        return round(super().denormalize(z))


@dataclass(frozen=True)
class Log(Space):
    """A positive float, uniform in its logarithm.

    Example:
        >>> round(Log(1e-4, 1e-2).denormalize(0.0), 8)
        0.001
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min <= 0:
            raise APIUsageError(f"Log: min must be > 0, got {self.min}; use Uniform for ranges")

    def _forward(self, value: float) -> float:
        return math.log(value)

    def _inverse(self, value: float) -> float:
        return math.exp(value)


@dataclass(frozen=True)
class Pow2(Log):
    """A power of two between ``min`` and ``max``, uniform in the exponent.

    Example:
        >>> Pow2(16, 1024).denormalize(0.1)
        128
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        for bound in (self.min, self.max):
            if 2 ** round(math.log2(bound)) != bound:
                raise APIUsageError(f"Pow2: bounds must be powers of two, got {bound}")

    def denormalize(self, z: float) -> int:
        """Map a point of [-1, 1] to the nearest power of two of the range."""
        value = super().denormalize(z)
        return int(2 ** round(math.log2(value)))


@dataclass(frozen=True)
class Logit(Space):
    """A float in (0, 1) close to 1, uniform in ``log(1 - value)`` (discount factors).

    Example:
        >>> round(Logit(0.9, 0.999).denormalize(0.0), 6)
        0.99
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.min > 0 and self.max < 1):
            raise APIUsageError(f"Logit: range must lie in (0, 1), got [{self.min}, {self.max}]")

    def _forward(self, value: float) -> float:
        return -math.log(1.0 - value)

    def _inverse(self, value: float) -> float:
        return 1.0 - math.exp(-value)


DISTRIBUTIONS: dict[str, type[Space]] = {
    "uniform": Uniform,
    "int_uniform": IntUniform,
    "log": Log,
    "pow2": Pow2,
    "logit": Logit,
}


def space_from_dict(spec: Mapping[str, Any]) -> Space:
    """Build one space from a TOML table such as ``{distribution = "log", min = 1e-4, max = 1e-2}``.

    Example:
        >>> space_from_dict({"distribution": "pow2", "min": 8, "max": 64})
        Pow2(min=8, max=64)
    """
    name = spec.get("distribution")
    if name not in DISTRIBUTIONS:
        raise APIUsageError(
            f"unknown distribution {name!r}; use one of {sorted(DISTRIBUTIONS)} "
            "(e.g. {distribution = 'log', min = 1e-4, max = 1e-2})"
        )
    if "min" not in spec or "max" not in spec:
        raise APIUsageError(f"a {name!r} search range needs 'min' and 'max', got {dict(spec)}")
    return DISTRIBUTIONS[name](spec["min"], spec["max"])


class SearchSpace:
    """An ordered set of named hyperparameter spaces, one of which may be the cost budget.

    Args:
        spaces: Name -> space, in a fixed order (the order of the cube's coordinates).
        budget: Name of the parameter that sets a run's cost (e.g. ``train.total_timesteps``);
            cost-aware searchers start cheap along it. ``None`` if there is none.

    Raises:
        APIUsageError: If the space is empty or the budget is not one of its names.
    """

    def __init__(self, spaces: Mapping[str, Space], budget: str | None = None) -> None:
        if not spaces:
            raise APIUsageError("a search space needs at least one hyperparameter")
        if budget is not None and budget not in spaces:
            raise APIUsageError(f"budget {budget!r} is not one of the parameters {list(spaces)}")
        self.spaces: dict[str, Space] = dict(spaces)
        self.names: list[str] = list(self.spaces)
        self.budget = budget

    @property
    def dim(self) -> int:
        """Number of hyperparameters (coordinates of the cube)."""
        return len(self.names)

    @property
    def budget_index(self) -> int | None:
        """Coordinate of the budget parameter, or ``None``."""
        return None if self.budget is None else self.names.index(self.budget)

    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray:
        """Map a params dict to a float64 point of [-1, 1]^d (extra keys are ignored)."""
        missing = [n for n in self.names if n not in params]
        if missing:
            raise APIUsageError(f"params lack {missing}; expected every one of {self.names}")
        return np.array([self.spaces[n].normalize(params[n]) for n in self.names], np.float64)

    def from_unit(self, z: np.ndarray) -> dict[str, Any]:
        """Map a point of [-1, 1]^d to a params dict (ints for int spaces, floats otherwise)."""
        values = np.asarray(z, np.float64).reshape(-1)
        if values.shape[0] != self.dim:
            raise APIUsageError(f"expected a point with {self.dim} coordinates, got {values.shape}")
        return {n: self.spaces[n].denormalize(float(v)) for n, v in zip(self.names, values)}

    def key(self, params: Mapping[str, Any], *, without_budget: bool = False) -> tuple[Any, ...]:
        """A hashable identity of a params dict (optionally ignoring the budget)."""
        return tuple(params[n] for n in self.names if not (without_budget and n == self.budget))

    @classmethod
    def from_dict(cls, table: Mapping[str, Any]) -> SearchSpace:
        """Build a space from a preset's ``[sweep]`` table.

        The table holds ``budget = "<name>"`` (optional) and a ``[sweep.parameters]`` sub-table
        mapping each dotted config key to ``{distribution, min, max}``.

        Example:
            >>> space = SearchSpace.from_dict({
            ...     "budget": "train.total_timesteps",
            ...     "parameters": {
            ...         "train.learning_rate": {"distribution": "log", "min": 1e-4, "max": 1e-2},
            ...         "train.total_timesteps": {"distribution": "log", "min": 1e4, "max": 1e6},
            ...     },
            ... })
            >>> space.names, space.budget
            (['train.learning_rate', 'train.total_timesteps'], 'train.total_timesteps')
        """
        parameters = table.get("parameters")
        if not isinstance(parameters, Mapping) or not parameters:
            raise APIUsageError(
                "the [sweep] table needs a [sweep.parameters] table such as "
                '"train.learning_rate" = {distribution = "log", min = 1e-4, max = 1e-2}'
            )
        spaces = {str(name): space_from_dict(spec) for name, spec in parameters.items()}
        budget = table.get("budget")
        return cls(spaces, budget=None if budget is None else str(budget))

    def __repr__(self) -> str:
        return f"SearchSpace({self.spaces!r}, budget={self.budget!r})"
