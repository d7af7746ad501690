"""The water tank's shield: its safety game solved over the exact (level, valve, held) state.

``water-tank-v1`` (:mod:`fugu.envs.water_tank`) observes ``(level / capacity, valve,
held / min_switch_steps)`` with a whole-number level, so each observation decodes to one state
of a finite game: the agent picks the valve setting, the environment picks the inflow. The
game is solved by :func:`fugu.safety.game.solve_safety_game`; the resulting table allows only
actions after which the tank can be kept off both walls whatever the inflow, respecting the
minimum switching time. This module mirrors the env's dynamics (it may not import
:mod:`fugu.envs`, a sibling layer); the tests check the two agree.

Example:
    >>> spec = water_tank_spec()
    >>> obs = np.array([[0.5, 0, 1.0], [0.98, 0, 1.0], [0.97, 0, 1 / 3]], dtype=np.float32)
    >>> spec.allowed(obs).tolist()  # mid level: both; near the brim: open; cannot open: none
    [[True, True], [False, True], [False, False]]
"""

from __future__ import annotations

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.safety.game import solve_safety_game
from fugu.safety.spec import TableSpec

__all__ = ["water_tank_game", "water_tank_spec"]


def water_tank_game(
    capacity: int = 100,
    inflow_low: int = 1,
    inflow_high: int = 2,
    outflow: int = 3,
    min_switch_steps: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """``(successors, safe)`` of the water tank's safety game (see :func:`solve_safety_game`).

    State index ``(level * 2 + valve) * min_switch_steps + (held - 1)`` for level in
    ``0..capacity``, valve 0/1, held ``1..min_switch_steps``; levels ``0`` and ``capacity`` are
    the violations (absorbing).
    """
    if capacity < 2 or min_switch_steps < 1 or inflow_high < inflow_low:
        raise APIUsageError("water tank game: bad parameters")
    m = int(min_switch_steps)
    num_states = (capacity + 1) * 2 * m
    inflows = np.arange(inflow_low, inflow_high + 1)
    successors = np.zeros((num_states, 2, len(inflows)), dtype=np.int64)
    safe = np.zeros(num_states, dtype=bool)
    for level in range(capacity + 1):
        for valve in range(2):
            for held in range(1, m + 1):
                s = (level * 2 + valve) * m + held - 1
                violated = level <= 0 or level >= capacity
                safe[s] = not violated
                for action in range(2):
                    if violated:
                        successors[s, action] = s
                        continue
                    if action != valve and held >= m:
                        new_valve, new_held = action, 1
                    else:
                        new_valve, new_held = valve, min(held + 1, m)
                    nxt = np.clip(level + inflows - outflow * new_valve, 0, capacity)
                    successors[s, action] = (nxt * 2 + new_valve) * m + new_held - 1
    return successors, safe


def water_tank_spec(
    capacity: int = 100,
    inflow_low: int = 1,
    inflow_high: int = 2,
    outflow: int = 3,
    min_switch_steps: int = 3,
    **_: object,
) -> TableSpec:
    """The synthesised shield of a water tank with these parameters (the env's kwargs; others,
    such as ``max_steps``, are ignored). Action 1 (open) is the fallback of choice: a dead end
    never occurs inside the winning region."""
    m = int(min_switch_steps)
    successors, safe_states = water_tank_game(capacity, inflow_low, inflow_high, outflow, m)
    table = solve_safety_game(successors, safe_states)[1]

    def encode(observations: np.ndarray) -> np.ndarray:
        level = np.clip(np.rint(observations[:, 0] * capacity), 0, capacity).astype(np.int64)
        valve = (observations[:, 1] > 0.5).astype(np.int64)
        held = np.clip(np.rint(observations[:, 2] * m), 1, m).astype(np.int64)
        return (level * 2 + valve) * m + held - 1  # type: ignore[no-any-return]

    return TableSpec(encode, table, fallback_order=(1, 0))
