"""WaterTank: keep a tank's level inside its walls with an on/off outlet valve (shielding).

After the water-tank example of Alshiekh et al. 2018 ("Safe Reinforcement Learning via
Shielding"). The level is a whole number of units in ``[0, capacity]``. Each step a random
inflow of ``inflow_low..inflow_high`` units (uniform, inclusive) enters the tank; while the
outlet valve is open, ``outflow`` units leave it. The Discrete(2) action is the valve setting
the agent wants (0 closed, 1 open), but a valve must stay in a setting for at least
``min_switch_steps`` steps (the step it switched included) before it may switch again: an
earlier request to switch is ignored and the valve keeps its setting.

A level that reaches ``capacity`` (overflow) or ``0`` (the tank runs empty) is a *violation*:
the step has cost 1 in the declared extra field ``costs`` (:data:`fugu.core.schema.COSTS`),
reward 0, and it terminates the episode. Every other step is rewarded ``level / capacity``
(a fuller tank stores more), so the best policy keeps the tank close to the brim, which is
exactly where a careless policy overflows. Episodes are truncated after ``max_steps`` (200).

The row is ``(level / capacity, valve, held / min_switch_steps)`` (float32 in ``[0, 1]``),
``held`` being the steps the valve has kept its setting, counted up to ``min_switch_steps``
(a switch is allowed when it is 1). Because the level is a whole number, the observation
gives the exact state: :mod:`fugu.safety.water_tank` solves the safety game over it.

Example:
    >>> env = WaterTank(num_envs=2, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.costs.shape, env.single_action_space
    ((2, 3), (2,), Discrete(2))
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from numba import njit

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError
from fugu.core.schema import COSTS
from fugu.envs import render as draw
from fugu.envs.native import (
    ACTIONS,
    EPISODE_LENGTH,
    EPISODE_RETURN,
    EPISODE_STATS,
    OBSERVATIONS,
    REWARDS,
    RNG,
    TERMINALS,
    TRUNCATIONS,
    KernelIO,
    NativeEnv,
    end_episode,
    rng_integers,
)

__all__ = ["WaterTank"]

_CAPACITY, _INFLOW_LOW, _INFLOW_HIGH, _OUTFLOW, _MIN_SWITCH, _MAX_STEPS, _START_LOW, _START_HIGH = (
    range(8)
)


@njit(cache=True, nogil=True)
def _observe(
    i: int, level: np.ndarray, valve: np.ndarray, held: np.ndarray, obs: np.ndarray,
    params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    obs[i, 0] = level[i] / params[_CAPACITY]
    obs[i, 1] = valve[i]
    obs[i, 2] = held[i] / params[_MIN_SWITCH]


@njit(cache=True, nogil=True)
def _draw(
    i: int, level: np.ndarray, valve: np.ndarray, held: np.ndarray, rng: np.ndarray,
    params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    low = int(params[_START_LOW])
    level[i] = low + rng_integers(rng, i, int(params[_START_HIGH]) - low + 1)
    valve[i] = rng_integers(rng, i, 2)
    held[i] = int(params[_MIN_SWITCH])


@njit(cache=True, nogil=True)
def _reset(
    lo: int, hi: int, io: KernelIO, level: np.ndarray, valve: np.ndarray, held: np.ndarray,
    params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    obs, rng = io[OBSERVATIONS], io[RNG]
    for i in range(lo, hi):
        _draw(i, level, valve, held, rng, params)
        _observe(i, level, valve, held, obs, params)


@njit(cache=True, nogil=True)
def _step(
    lo: int, hi: int, io: KernelIO, level: np.ndarray, valve: np.ndarray, held: np.ndarray,
    costs: np.ndarray, params: np.ndarray,
) -> None:  # pragma: no cover - numba  # fmt: skip
    actions, obs, rewards = io[ACTIONS], io[OBSERVATIONS], io[REWARDS]
    terminals, truncations, rng = io[TERMINALS], io[TRUNCATIONS], io[RNG]
    ret, length, stats = io[EPISODE_RETURN], io[EPISODE_LENGTH], io[EPISODE_STATS]
    capacity = int(params[_CAPACITY])
    inflow_low = int(params[_INFLOW_LOW])
    spread = int(params[_INFLOW_HIGH]) - inflow_low + 1
    outflow = int(params[_OUTFLOW])
    min_switch = int(params[_MIN_SWITCH])
    for i in range(lo, hi):
        wanted = 1 if actions[i] != 0 else 0
        if wanted != valve[i] and held[i] >= min_switch:
            valve[i] = wanted
            held[i] = 1
        elif held[i] < min_switch:
            held[i] += 1
        level[i] += inflow_low + rng_integers(rng, i, spread) - outflow * valve[i]
        overflow = level[i] >= capacity
        empty = level[i] <= 0
        violated = overflow or empty
        reward = 0.0 if violated else level[i] / capacity
        rewards[i] = reward
        costs[i] = 1.0 if violated else 0.0
        ret[i] += reward
        length[i] += 1
        truncated = (not violated) and length[i] >= params[_MAX_STEPS]
        terminals[i] = violated
        truncations[i] = truncated
        _observe(i, level, valve, held, obs, params)
        if violated or truncated:
            stats[i, 3] += 1.0 if violated else 0.0
            stats[i, 4] += 1.0 if overflow else 0.0
            stats[i, 5] += 1.0 if empty else 0.0
            end_episode(io, i, i, i + 1)
            _draw(i, level, valve, held, rng, params)
            _observe(i, level, valve, held, obs, params)


class WaterTank(NativeEnv):
    """``water-tank-v1``: a tank level kept off its walls by an outlet valve (Discrete(2)).

    It declares the extra field ``costs`` (float32 ``[A]``: 1 on a step that overflows or
    empties the tank, else 0); infos carry ``episode_cost`` (violations per episode, 0 or 1
    since a violation ends the episode), ``overflow`` and ``empty`` (the fraction of episodes
    ended by each).

    Args:
        num_envs: Number of copies (rows).
        threads: Threads stepping disjoint ranges of rows.
        seed: Seed of the first reset (row ``i`` uses ``seed + i``).
        buffers: Buffers to adopt from a vectorizer.
        info_interval: Steps between aggregations of episode statistics into ``infos``.
        batch_size: Rows per ``recv`` batch for double buffering (``None``: all rows).
        capacity: Level at which the tank overflows (whole units, >= 4).
        inflow_low: Least inflow per step (whole units, >= 0).
        inflow_high: Most inflow per step (>= ``inflow_low``).
        outflow: Units the open valve lets out per step (> ``inflow_high``, so opening drains).
        min_switch_steps: Steps a valve setting is held before it may switch again (>= 1).
        max_steps: Truncation step count.
        start_spread: Episodes start at a level drawn uniformly within this many units of
            ``capacity / 2``.
    """

    costs: np.ndarray
    """Per-step violation of every row (the ``costs`` extra field)."""
    score_keys = ("episode_cost", "overflow", "empty")

    def __init__(
        self,
        num_envs: int = 1,
        *,
        threads: int = 1,
        seed: int | None = None,
        buffers: EnvBuffers | None = None,
        info_interval: int = 128,
        batch_size: int | None = None,
        capacity: int = 100,
        inflow_low: int = 1,
        inflow_high: int = 2,
        outflow: int = 3,
        min_switch_steps: int = 3,
        max_steps: int = 200,
        start_spread: int = 10,
    ) -> None:
        values = (capacity, inflow_low, inflow_high, outflow, min_switch_steps, start_spread)
        if any(int(v) != v for v in values):
            raise APIUsageError(f"water-tank parameters must be whole numbers, got {values}")
        if capacity < 4 or inflow_low < 0 or inflow_high < inflow_low or outflow <= inflow_high:
            raise APIUsageError(
                "water-tank needs capacity >= 4, 0 <= inflow_low <= inflow_high < outflow, got "
                f"capacity={capacity}, inflow=({inflow_low}, {inflow_high}), outflow={outflow}"
            )
        if min_switch_steps < 1 or int(max_steps) < 1:
            raise APIUsageError(
                f"min_switch_steps and max_steps must be >= 1, got {min_switch_steps}, {max_steps}"
            )
        half = int(capacity) // 2
        if not 0 <= start_spread < half:
            raise APIUsageError(f"start_spread must be in [0, {half}), got {start_spread}")
        self.capacity = int(capacity)
        self.inflow = (int(inflow_low), int(inflow_high))
        self.outflow = int(outflow)
        self.min_switch_steps = int(min_switch_steps)
        self.params = np.array(
            [capacity, inflow_low, inflow_high, outflow, min_switch_steps, max_steps,
             half - start_spread, half + start_spread],
            dtype=np.float64,
        )  # fmt: skip
        super().__init__(
            num_envs,
            spaces.Box(0.0, 1.0, (3,), dtype=np.float32),
            spaces.Discrete(2),
            threads=threads,
            seed=seed,
            buffers=buffers,
            info_interval=info_interval,
            batch_size=batch_size,
            extra_fields=(COSTS,),
        )

    def allocate_state(self, num_envs: int) -> dict[str, np.ndarray]:
        """``level``, ``valve`` (0/1) and ``held`` (steps in the setting), int64 ``[num_envs]``."""
        return {
            "level": np.zeros(num_envs, dtype=np.int64),
            "valve": np.zeros(num_envs, dtype=np.int64),
            "held": np.zeros(num_envs, dtype=np.int64),
        }

    def reset_envs(self, lo: int, hi: int) -> None:
        """Draw fresh levels and valve settings for copies ``[lo, hi)``."""
        s = self.state
        self.costs[lo:hi] = 0.0
        _reset(lo, hi, self.io, s["level"], s["valve"], s["held"], self.params)

    def step_envs(self, lo: int, hi: int) -> None:
        """Step copies ``[lo, hi)``."""
        s = self.state
        _step(lo, hi, self.io, s["level"], s["valve"], s["held"], self.costs, self.params)

    def render(self, row: int = 0) -> np.ndarray:
        """A 96x64 image: the tank (grey walls), its water (blue) and the valve (green open)."""
        height, width = 96, 64
        img = draw.canvas(height, width, (245, 245, 245))
        top, bottom = 8, height - 8
        img[top:bottom, 12:14] = (90, 90, 90)
        img[top:bottom, width - 14 : width - 12] = (90, 90, 90)
        img[bottom - 2 : bottom, 12 : width - 12] = (90, 90, 90)
        fill = round((bottom - 2 - top) * float(self.state["level"][row]) / self.capacity)
        if fill > 0:
            img[bottom - 2 - fill : bottom - 2, 14 : width - 14] = (70, 120, 220)
        colour = (60, 180, 60) if self.state["valve"][row] else (200, 70, 70)
        img[bottom : bottom + 6, width // 2 - 4 : width // 2 + 4] = colour
        return img
