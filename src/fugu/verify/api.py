"""``verify(policy, properties)``: check properties of a trained policy with several engines.

Example:
    >>> import numpy as np
    >>> from fugu.safety.properties import Property
    >>> from fugu.verify.network import Network
    >>> net = Network([(np.array([[1.0], [-1.0]]), np.zeros(2), "linear")])
    >>> prop = Property("x>0 never 1", "never_action", np.array([0.1]), np.array([1.0]), action=1)
    >>> [r.status for r in verify(net, [prop], engines=("ibp",))]
    ['holds']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fugu.core.errors import APIUsageError
from fugu.safety.properties import Property, load_properties, property_spec
from fugu.safety.spec import PredicateSpec
from fugu.verify.ibp import check_ibp
from fugu.verify.network import Network, from_policy
from fugu.verify.result import VerifyResult

__all__ = ["ENGINES", "load_network", "verified_shield", "verify"]


def _z3(net: Network, prop: Property, timeout_s: float) -> VerifyResult:
    from fugu.verify.z3_engine import check_z3

    return check_z3(net, prop, timeout_s)


def _marabou(net: Network, prop: Property, timeout_s: float) -> VerifyResult:
    from fugu.verify.marabou_engine import check_marabou

    return check_marabou(net, prop, timeout_s)


def _ibp(net: Network, prop: Property, timeout_s: float) -> VerifyResult:
    return check_ibp(net, prop)


ENGINES: dict[str, Callable[[Network, Property, float], VerifyResult]] = {
    "ibp": _ibp,
    "z3": _z3,
    "marabou": _marabou,
}
"""The engines by name: ``ibp`` (sound, incomplete, milliseconds), ``z3`` and ``marabou``
(exact for ReLU policies)."""


def load_network(checkpoint: str | Path) -> tuple[Network, str]:
    """The policy of a checkpoint (or a run dir's latest) as a :class:`Network`, and its env
    id."""
    from fugu.bridges.entry import make_env
    from fugu.checkpoint import find_latest_valid
    from fugu.train.build import load_algorithm
    from fugu.train.experiment import ExperimentConfig

    path = Path(checkpoint)
    if not (path / "manifest.json").is_file():
        found = find_latest_valid(path) if path.exists() else None
        if found is None:
            raise APIUsageError(f"no valid checkpoint at {path}")
        path = found
    manifest = json.loads((path / "manifest.json").read_text())
    env_id = ExperimentConfig.from_dict(manifest.get("config", {})).env.id
    env = make_env(env_id)
    try:
        algo, _ = load_algorithm(path, env.single_observation_space, env.single_action_space, "cpu")
    finally:
        env.close()
    policy = algo.modules().get("policy")
    if policy is None:
        raise APIUsageError(f"the {algo.name} checkpoint has no 'policy' module to verify")
    return from_policy(policy.eval()), env_id


def _network(target: Any) -> Network:
    if isinstance(target, Network):
        return target
    if isinstance(target, (str, Path)):
        return load_network(target)[0]
    return from_policy(target)


def verify(
    target: Any,
    properties: Sequence[Property] | str | Path,
    engines: Sequence[str] = ("ibp", "z3", "marabou"),
    timeout_s: float = 60.0,
) -> list[VerifyResult]:
    """Check every property with every engine, in that order.

    Args:
        target: A :class:`Network`, a feed-forward MLP policy, or a checkpoint / run dir.
        properties: Properties, or a TOML property file (:mod:`fugu.safety.properties`).
        engines: Names in :data:`ENGINES`.
        timeout_s: Per property and exact engine.
    """
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise APIUsageError(f"unknown engine(s) {unknown}; choose from {sorted(ENGINES)}")
    props = load_properties(properties) if isinstance(properties, (str, Path)) else list(properties)
    net = _network(target)
    for prop in props:
        prop.check_sizes(net.num_inputs, net.num_outputs)
    return [ENGINES[engine](net, prop, timeout_s) for prop in props for engine in engines]


def verified_shield(
    target: Any,
    properties: Sequence[Property] | str | Path,
    engine: str = "ibp",
    timeout_s: float = 60.0,
) -> tuple[PredicateSpec, list[VerifyResult]]:
    """A shield spec enforcing the ``never_action`` properties, and their verification.

    Where a property is proved for the policy, the shield built from it never intervenes on
    that policy (a certificate that shielding costs it nothing); where it is violated, the
    shield is what makes it hold at run time (:class:`fugu.safety.shield.ShieldedVecEnv`).
    """
    props = load_properties(properties) if isinstance(properties, (str, Path)) else list(properties)
    rules = [p for p in props if p.kind == "never_action"]
    net = _network(target)
    results = verify(net, rules, (engine,), timeout_s)
    return property_spec(rules, net.num_outputs), results
