"""Safe RL at run time: safety specifications and shields on the data plane (no torch).

- :mod:`fugu.safety.spec`: :class:`SafetySpec` and its kinds (predicate, table, automaton);
- :mod:`fugu.safety.game`: shield synthesis by solving a finite safety game;
- :mod:`fugu.safety.shield`: :class:`ShieldedVecEnv`, pre-emptive / post-posed / monitor;
- :mod:`fugu.safety.properties`: the property language shared with :mod:`fugu.verify`;
- :mod:`fugu.safety.config`: the ``[shield]`` config section;
- :mod:`fugu.safety.water_tank`: the synthesised shield of ``water-tank-v1``.
"""

from fugu.safety.config import ShieldConfig, make_spec, wrap_envs
from fugu.safety.game import solve_safety_game
from fugu.safety.properties import Property, load_properties, parse_properties, property_spec
from fugu.safety.shield import SHIELD_MODES, ShieldedVecEnv
from fugu.safety.spec import PredicateSpec, SafetyAutomaton, SafetySpec, TableSpec

__all__ = [
    "SHIELD_MODES",
    "PredicateSpec",
    "Property",
    "SafetyAutomaton",
    "SafetySpec",
    "ShieldConfig",
    "ShieldedVecEnv",
    "TableSpec",
    "load_properties",
    "make_spec",
    "parse_properties",
    "property_spec",
    "solve_safety_game",
    "wrap_envs",
]
