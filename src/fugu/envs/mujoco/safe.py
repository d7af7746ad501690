"""Safety-Gymnasium's velocity tasks on the batched ports: ``safe-hopper-velocity-v1`` and
``safe-halfcheetah-velocity-v1``.

The same tasks as :mod:`fugu.bridges.safe_velocity` (``Hopper-v5`` / ``HalfCheetah-v5`` with
a cost of 1 on every step whose forward velocity exceeds 0.7402 / 3.2096, in the declared
``costs`` field, ``episode_cost`` in the infos), built on :class:`~fugu.envs.mujoco.Hopper`
and :class:`~fugu.envs.mujoco.HalfCheetah`: ``num_envs`` rows in one env instead of one
Gymnasium env per row. ``tests/envs/test_mujoco_safe.py`` checks them against the bridge's
one-row envs step for step.

Example:
    >>> env = SafeHopperVelocity(num_envs=4, seed=0)
    >>> _ = env.reset()
    >>> _ = env.step(np.zeros((4, 3), np.float32))
    >>> env.costs.dtype, env.threshold
    (dtype('float32'), 0.7402)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fugu.core.schema import COSTS
from fugu.envs.mujoco.base import MjRows
from fugu.envs.mujoco.locomotion import HalfCheetah, Hopper

__all__ = ["SAFE_VELOCITY_THRESHOLDS", "SafeHalfCheetahVelocity", "SafeHopperVelocity"]

SAFE_VELOCITY_THRESHOLDS: dict[str, float] = {"hopper": 0.7402, "halfcheetah": 3.2096}
"""Safety-Gymnasium v1's forward-velocity limits (those of fugu.bridges.safe_velocity)."""


class _VelocityCost:
    """Cost ``1[x_velocity > threshold]`` per step; ``x_velocity`` from ``qpos[0]``."""

    score_keys: ClassVar[tuple[str, ...]] = ("episode_cost",)
    threshold: float

    def _cost(self, sim: MjRows, previous: MjRows) -> np.ndarray:
        velocity = (sim.qpos[:, 0] - previous.qpos[:, 0]) / sim.dt
        return (velocity > self.threshold).astype(np.float32)  # type: ignore[no-any-return]

    def step_extras(
        self, sim: MjRows, previous: MjRows, actions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The ``costs`` of the step."""
        return {"costs": self._cost(sim, previous)}

    def step_scores(self, sim: MjRows, previous: MjRows, actions: np.ndarray) -> np.ndarray:
        """The episode cost accumulates the step costs."""
        return self._cost(sim, previous)[:, None]


class SafeHopperVelocity(_VelocityCost, Hopper):
    """``safe-hopper-velocity-v1``: ``hopper-v1`` with cost 1 when ``x_velocity > 0.7402``."""

    def __init__(self, num_envs: int = 1, *, threshold: float | None = None, **kwargs: Any):
        self.threshold = float(
            SAFE_VELOCITY_THRESHOLDS["hopper"] if threshold is None else threshold
        )
        super().__init__(num_envs, extra_fields=(COSTS,), **kwargs)


class SafeHalfCheetahVelocity(_VelocityCost, HalfCheetah):
    """``safe-halfcheetah-velocity-v1``: ``halfcheetah-v1``, cost 1 when ``x_velocity > 3.2096``."""

    def __init__(self, num_envs: int = 1, *, threshold: float | None = None, **kwargs: Any):
        self.threshold = float(
            SAFE_VELOCITY_THRESHOLDS["halfcheetah"] if threshold is None else threshold
        )
        super().__init__(num_envs, extra_fields=(COSTS,), **kwargs)
