"""Properties of a policy over an input box, and the TOML file format they are written in.

One property language serves two purposes: :mod:`fugu.verify` proves (or refutes, with a
counterexample) that a trained policy satisfies a property, and a shield enforces a
``never_action`` property at run time (:func:`property_spec`), so a property verified offline
and the shield built from it say the same thing.

A property file holds one ``[[property]]`` table per property::

    [[property]]
    name = "push right when falling right"
    kind = "never_action"      # in the box, the policy never chooses `action`
    low = [-0.5, -0.5, 0.05, 0.2]
    high = [0.5, 0.5, 0.2, 1.0]
    action = 0

    [[property]]
    kind = "output_bounds"     # in the box, head output `output` stays in [lower, upper]
    low = [-1, -1, -8]
    high = [1, 1, 8]
    output = 0
    lower = -50.0
    upper = 50.0

    [[property]]
    kind = "monotonic"         # in the box, output `output` never decreases along input `input`
    low = [-0.2, -0.2, -0.2, -0.2]
    high = [0.2, 0.2, 0.2, 0.2]
    output = 1
    input = 2
    direction = "increasing"   # or "decreasing"

Outputs are the policy head's: the logits of a Discrete policy, the Gaussian mean of a Box one.
A ``never_action`` holds when ``action`` is never the argmax (a tie counts as chosen).

Example:
    >>> props = parse_properties('''
    ... [[property]]
    ... kind = "never_action"
    ... low = [0.9, 0.0]
    ... high = [1.0, 1.0]
    ... action = 0
    ... ''')
    >>> props[0].name, props[0].kind, props[0].low.tolist()
    ('property 1', 'never_action', [0.9, 0.0])
    >>> spec = property_spec(props, num_actions=2)
    >>> spec.allowed(np.array([[0.95, 0.5], [0.5, 0.5]])).tolist()
    [[False, True], [True, True]]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.safety.spec import PredicateSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

__all__ = [
    "PROPERTY_KINDS",
    "Property",
    "PropertyError",
    "load_properties",
    "parse_properties",
    "property_spec",
]

PROPERTY_KINDS = ("never_action", "output_bounds", "monotonic")
"""The kinds of property."""

_KEYS: dict[str, set[str]] = {
    "never_action": {"action"},
    "output_bounds": {"output", "lower", "upper"},
    "monotonic": {"output", "input", "direction"},
}
_COMMON = {"name", "kind", "low", "high"}


class PropertyError(APIUsageError):
    """A property file or table is malformed (the message says where and what)."""


@dataclass(frozen=True)
class Property:
    """One property of a policy over the input box ``[low, high]``.

    Attributes:
        name: Shown in reports.
        kind: One of :data:`PROPERTY_KINDS`.
        low: float64 ``[obs_size]``: the box's lower corner.
        high: float64 ``[obs_size]``: its upper corner.
        action: ``never_action``: the action never chosen.
        output: ``output_bounds``/``monotonic``: the head output concerned.
        lower: ``output_bounds``: least allowed value (``-inf``: none).
        upper: ``output_bounds``: largest allowed value (``inf``: none).
        input: ``monotonic``: the input dimension varied.
        direction: ``monotonic``: ``"increasing"`` or ``"decreasing"`` (non-strict).
    """

    name: str
    kind: str
    low: np.ndarray
    high: np.ndarray
    action: int = -1
    output: int = -1
    lower: float = -math.inf
    upper: float = math.inf
    input: int = -1
    direction: str = "increasing"

    def contains(self, observations: np.ndarray) -> np.ndarray:
        """bool ``[rows]``: the observations (``[rows, obs_size]``) inside the box."""
        obs = np.asarray(observations, np.float64).reshape(len(observations), -1)
        inside = (obs >= self.low).all(axis=1) & (obs <= self.high).all(axis=1)
        return np.asarray(inside, dtype=bool)

    def check_sizes(self, obs_size: int, num_outputs: int) -> None:
        """Raise :class:`PropertyError` unless the property fits a policy of these sizes."""
        where = f"property {self.name!r}"
        if len(self.low) != obs_size:
            raise PropertyError(
                f"{where}: the box has {len(self.low)} dimensions, the policy's observations "
                f"{obs_size}"
            )
        index = self.action if self.kind == "never_action" else self.output
        if not 0 <= index < num_outputs:
            what = "action" if self.kind == "never_action" else "output"
            raise PropertyError(f"{where}: {what} {index} is not in [0, {num_outputs})")
        if self.kind == "monotonic" and not 0 <= self.input < obs_size:
            raise PropertyError(f"{where}: input {self.input} is not in [0, {obs_size})")


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PropertyError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _integer(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PropertyError(f"{where}: {key} must be a whole number, got {value!r}")
    return int(value)


def _vector(value: Any, where: str, key: str) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise PropertyError(f"{where}: {key} must be a non-empty list of numbers, got {value!r}")
    return np.array([_number(v, where, key) for v in value], dtype=np.float64)


def _one(table: Mapping[str, Any], index: int) -> Property:
    where = f"property {index + 1}"
    if not isinstance(table, Mapping):
        raise PropertyError(f"{where}: must be a table, got {table!r}")
    name = table.get("name", where)
    if not isinstance(name, str):
        raise PropertyError(f"{where}: name must be a string, got {name!r}")
    where = f"property {index + 1} ({name!r})" if "name" in table else where
    kind = table.get("kind")
    if kind not in PROPERTY_KINDS:
        raise PropertyError(f"{where}: kind must be one of {PROPERTY_KINDS}, got {kind!r}")
    allowed = _COMMON | _KEYS[kind] | ({"lower", "upper"} if kind == "output_bounds" else set())
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PropertyError(
            f"{where}: unknown key(s) {unknown} for kind {kind!r}; allowed: {sorted(allowed)}"
        )
    for key in ("low", "high"):
        if key not in table:
            raise PropertyError(f"{where}: missing {key!r} (the input box's corners)")
    low, high = _vector(table["low"], where, "low"), _vector(table["high"], where, "high")
    if low.shape != high.shape:
        raise PropertyError(f"{where}: low has {len(low)} values, high {len(high)}")
    if (low > high).any():
        dim = int(np.argmax(low > high))
        raise PropertyError(f"{where}: low[{dim}] = {low[dim]} is above high[{dim}] = {high[dim]}")
    fields: dict[str, Any] = {"name": name, "kind": kind, "low": low, "high": high}
    if kind == "never_action":
        if "action" not in table:
            raise PropertyError(f"{where}: missing 'action'")
        fields["action"] = _integer(table["action"], where, "action")
    else:
        if "output" not in table:
            raise PropertyError(f"{where}: missing 'output' (the head output concerned)")
        fields["output"] = _integer(table["output"], where, "output")
    if kind == "output_bounds":
        if "lower" not in table and "upper" not in table:
            raise PropertyError(f"{where}: give 'lower', 'upper' or both")
        fields["lower"] = _number(table.get("lower", -math.inf), where, "lower")
        fields["upper"] = _number(table.get("upper", math.inf), where, "upper")
        if fields["lower"] > fields["upper"]:
            raise PropertyError(
                f"{where}: lower {fields['lower']} is above upper {fields['upper']}"
            )
    if kind == "monotonic":
        if "input" not in table:
            raise PropertyError(f"{where}: missing 'input' (the input dimension varied)")
        fields["input"] = _integer(table["input"], where, "input")
        direction = table.get("direction", "increasing")
        if direction not in ("increasing", "decreasing"):
            raise PropertyError(
                f"{where}: direction must be 'increasing' or 'decreasing', got {direction!r}"
            )
        fields["direction"] = direction
    return Property(**fields)


def parse_properties(text: str, origin: str = "<string>") -> list[Property]:
    """The properties of a property file's text (see the module docstring for the format)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PropertyError(f"{origin}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"property"})
    if unknown:
        raise PropertyError(
            f"{origin}: unknown top-level key(s) {unknown}; use [[property]] tables"
        )
    tables = data.get("property")
    if not isinstance(tables, list) or not tables:
        raise PropertyError(f"{origin}: no [[property]] tables found")
    try:
        return [_one(table, i) for i, table in enumerate(tables)]
    except PropertyError as error:
        raise PropertyError(f"{origin}: {error}") from None


def load_properties(path: str | Path) -> list[Property]:
    """The properties of a TOML property file."""
    path = Path(path)
    if not path.is_file():
        raise PropertyError(f"property file {str(path)!r} does not exist")
    return parse_properties(path.read_text("utf-8"), str(path))


def property_spec(properties: Sequence[Property], num_actions: int) -> PredicateSpec:
    """A shield spec enforcing the ``never_action`` properties: inside a property's box its
    action is unsafe (other kinds are about outputs, not actions, and are skipped)."""
    rules = [p for p in properties if p.kind == "never_action"]
    if not rules:
        raise PropertyError("a shield needs at least one never_action property")
    for p in rules:
        if not 0 <= p.action < num_actions:
            raise PropertyError(f"property {p.name!r}: action {p.action} not in [0, {num_actions})")

    def safe(observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        ok = np.ones(len(observations), dtype=bool)
        for p in rules:
            ok &= ~(p.contains(observations) & (actions == p.action))
        return ok

    return PredicateSpec(safe, num_actions)
