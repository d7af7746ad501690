"""Verified policies: properties of trained MLP policies proved or refuted.

- :mod:`fugu.verify.network`: a policy's actor as a plain feed-forward network;
- :mod:`fugu.verify.ibp`: interval bound propagation (sound, incomplete, milliseconds);
- :mod:`fugu.verify.z3_engine`: exact, with the z3 SMT solver;
- :mod:`fugu.verify.marabou_engine`: exact, with Marabou (through an ONNX graph);
- :mod:`fugu.verify.api`: :func:`verify` and :func:`verified_shield`.

Properties and their TOML file format are :mod:`fugu.safety.properties` (shared with shields).
"""

from fugu.verify.api import ENGINES, load_network, verified_shield, verify
from fugu.verify.ibp import check_ibp, interval_bounds
from fugu.verify.network import Network, from_actor_graph, from_policy
from fugu.verify.result import STATUSES, VerifyResult

__all__ = [
    "ENGINES",
    "STATUSES",
    "Network",
    "VerifyResult",
    "check_ibp",
    "from_actor_graph",
    "from_policy",
    "interval_bounds",
    "load_network",
    "verified_shield",
    "verify",
]
