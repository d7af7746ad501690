"""Safety-Gymnasium's velocity tasks, rebuilt on Gymnasium 1.x MuJoCo (v5 robots).

Safety-Gymnasium 1.0's ``SafetyHopperVelocity-v1`` and ``SafetyHalfCheetahVelocity-v1`` are
the Gymnasium MuJoCo locomotion tasks with a cost of 1 on every step whose forward velocity
exceeds a threshold (0.7402 for Hopper, 3.2096 for HalfCheetah: half of what an unconstrained
PPO reaches), so a policy that runs as fast as it can pays a cost on most steps. The package
does not install on Python 3.11 here, so fugu rebuilds the tasks with the same semantics on the
newer robot versions: ``safe-hopper-velocity-v1`` is ``Hopper-v5`` and
``safe-halfcheetah-velocity-v1`` is ``HalfCheetah-v5``, with ``cost = 1[x_velocity >
threshold]`` (``info["x_velocity"]``, the torso's forward velocity) carried as the declared
``costs`` field through the Gymnasium bridge (:class:`~fugu.core.emulation.GymnasiumPufferEnv`
with ``costs=True``); infos report ``episode_cost``. Rewards, observations, terminations and
the 1000-step time limit are the v5 envs' own (the v4 robots Safety-Gymnasium wraps differ
slightly in their defaults), so returns are comparable in kind, not digit for digit.

The registered ids now make the batched versions of :mod:`fugu.envs.mujoco.safe` (checked
against these one-row envs step for step); this module builds the task on any Gymnasium MuJoCo
robot whose infos carry ``x_velocity``.

Needs MuJoCo (``pip install fugu-rl[mujoco]``); rendering headless needs ``MUJOCO_GL=egl``.

Example:
    >>> VELOCITY_THRESHOLDS["Hopper-v5"], VELOCITY_THRESHOLDS["HalfCheetah-v5"]
    (0.7402, 3.2096)
"""

from __future__ import annotations

from typing import Any

import gymnasium

from fugu.bridges.gymnasium import from_gymnasium
from fugu.core.emulation import GymnasiumPufferEnv
from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError, missing_dependency

__all__ = [
    "VELOCITY_THRESHOLDS",
    "VelocityCost",
    "make_velocity_env",
    "safe_halfcheetah_velocity",
    "safe_hopper_velocity",
]

VELOCITY_THRESHOLDS: dict[str, float] = {"Hopper-v5": 0.7402, "HalfCheetah-v5": 3.2096}
"""Forward-velocity limits of Safety-Gymnasium v1's velocity tasks, by Gymnasium robot."""


class VelocityCost(gymnasium.Wrapper):  # type: ignore[misc]
    """Adds ``info["cost"] = 1[info["x_velocity"] > threshold]`` to every step.

    Args:
        env: A Gymnasium MuJoCo locomotion env whose step infos carry ``x_velocity``.
        threshold: The velocity limit.
    """

    def __init__(self, env: gymnasium.Env, threshold: float) -> None:
        super().__init__(env)
        self.threshold = float(threshold)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the env and add the cost of the step to its info."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "x_velocity" not in info:
            raise APIUsageError(
                f"{self.env.spec.id if self.env.spec else self.env} reports no "
                "info['x_velocity']; VelocityCost needs a MuJoCo locomotion env"
            )
        info["cost"] = 1.0 if float(info["x_velocity"]) > self.threshold else 0.0
        return obs, reward, terminated, truncated, info


def make_velocity_env(
    gym_id: str,
    threshold: float | None = None,
    *,
    buffers: EnvBuffers | None = None,
    **kwargs: Any,
) -> GymnasiumPufferEnv:
    """A one-row fugu env: Gymnasium ``gym_id`` with the velocity cost in its ``costs`` field.

    Args:
        gym_id: A Gymnasium MuJoCo id (``"Hopper-v5"``, ``"HalfCheetah-v5"``, ...).
        threshold: The velocity limit (default: :data:`VELOCITY_THRESHOLDS` of ``gym_id``).
        buffers: One row of buffers to adopt (from a vectorizer).
        **kwargs: Passed to ``gymnasium.make``.
    """
    if threshold is None:
        if gym_id not in VELOCITY_THRESHOLDS:
            raise APIUsageError(
                f"no default velocity threshold for {gym_id!r} (known: "
                f"{sorted(VELOCITY_THRESHOLDS)}); pass threshold="
            )
        threshold = VELOCITY_THRESHOLDS[gym_id]
    try:
        import mujoco  # noqa: F401
    except ImportError:
        raise missing_dependency("mujoco", "mujoco") from None
    env = VelocityCost(gymnasium.make(gym_id, **kwargs), threshold)
    return from_gymnasium(env, buffers=buffers, costs=True)


def safe_hopper_velocity(buffers: EnvBuffers | None = None, **kwargs: Any) -> GymnasiumPufferEnv:
    """``safe-hopper-velocity-v1``: ``Hopper-v5``, cost 1 when ``x_velocity > 0.7402``."""
    return make_velocity_env("Hopper-v5", buffers=buffers, **kwargs)


def safe_halfcheetah_velocity(
    buffers: EnvBuffers | None = None, **kwargs: Any
) -> GymnasiumPufferEnv:
    """``safe-halfcheetah-velocity-v1``: ``HalfCheetah-v5``, cost 1 when ``x_velocity > 3.2096``."""
    return make_velocity_env("HalfCheetah-v5", buffers=buffers, **kwargs)
