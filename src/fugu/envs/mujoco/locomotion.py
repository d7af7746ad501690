"""Gymnasium's MuJoCo locomotion tasks as batched fugu envs: ``hopper-v1``, ``halfcheetah-v1``,
``ant-v1``.

Each is a :class:`~fugu.envs.mujoco.base.MujocoEnv` with the observations, rewards,
terminations, initial-state noise, frame skip and 1000-step time limit of Gymnasium's
``Hopper-v5``, ``HalfCheetah-v5`` and ``Ant-v5`` (their default arguments), written as
vectorised numpy over the rows, on the very MJCF files Gymnasium installs (MIT-licensed, loaded
from ``gymnasium/envs/mujoco/assets``; nothing is copied into fugu). Row ``i`` reset with seed
``s`` draws the initial state Gymnasium's env draws when reset with seed ``s + i``, and every
step makes the same MuJoCo calls, so trajectories match Gymnasium's step for step (the tests
check it to float32 precision: observations are float32 here, float64 there).

Example:
    >>> env = Hopper(num_envs=8, seed=0)
    >>> obs, _ = env.reset()
    >>> obs.shape, env.single_action_space.shape
    ((8, 11), (3,))
    >>> obs, rewards, terminals, truncations, _ = env.step(np.zeros((8, 3), np.float32))
    >>> rewards.dtype, bool(terminals.any())
    (dtype('float32'), False)
    >>> env.close()
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fugu.envs.mujoco.base import MjRows, MujocoEnv

__all__ = ["Ant", "HalfCheetah", "Hopper", "gymnasium_asset"]


def gymnasium_asset(name: str) -> str:
    """The path of one of the MJCF files Gymnasium installs (``"hopper.xml"``, ...).

    Example:
        >>> os.path.basename(gymnasium_asset("hopper.xml"))
        'hopper.xml'
    """
    import gymnasium.envs.mujoco

    return os.path.join(os.path.dirname(gymnasium.envs.mujoco.__file__), "assets", name)


def _ctrl_cost(actions: np.ndarray, weight: float) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float64)
    return weight * np.einsum("ij,ij->i", a, a)


def _unhealthy_rows(env: Hopper | Ant, sim: MjRows) -> np.ndarray:
    """The rows that end for being unhealthy (none when the env does not end them)."""
    if not env.terminate_when_unhealthy:
        return np.zeros(sim.qpos.shape[0], dtype=bool)
    return ~env.healthy(sim)


class Hopper(MujocoEnv):
    """``hopper-v1``: Gymnasium's ``Hopper-v5``, batched (the same keyword defaults).

    Observations are ``qpos[1:]`` and ``clip(qvel, -10, 10)`` (11 numbers); the reward is the
    forward velocity plus 1 while healthy minus ``1e-3 * |action|^2``; an episode ends when the
    hopper is unhealthy (height, angle or state out of range) or after 1000 steps.
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        xml_file: str | None = None,
        frame_skip: int = 4,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 1e-3,
        healthy_reward: float = 1.0,
        terminate_when_unhealthy: bool = True,
        healthy_state_range: tuple[float, float] = (-100.0, 100.0),
        healthy_z_range: tuple[float, float] = (0.7, float("inf")),
        healthy_angle_range: tuple[float, float] = (-0.2, 0.2),
        reset_noise_scale: float = 5e-3,
        max_episode_steps: int = 1000,
        **kwargs: Any,
    ) -> None:
        self.forward_reward_weight = float(forward_reward_weight)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.healthy_reward = float(healthy_reward)
        self.terminate_when_unhealthy = bool(terminate_when_unhealthy)
        self.healthy_state_range = healthy_state_range
        self.healthy_z_range = healthy_z_range
        self.healthy_angle_range = healthy_angle_range
        self.reset_noise_scale = float(reset_noise_scale)
        kwargs.setdefault(
            "camera", {"trackbodyid": 2, "distance": 3.0, "lookat": (0, 0, 1.15), "elevation": -20}
        )
        super().__init__(
            xml_file or gymnasium_asset("hopper.xml"),
            num_envs,
            frame_skip=frame_skip,
            max_episode_steps=max_episode_steps,
            **kwargs,
        )

    def observe(self, sim: MjRows) -> np.ndarray:
        """``qpos[1:]`` then ``clip(qvel, -10, 10)``."""
        return np.concatenate([sim.qpos[:, 1:], np.clip(sim.qvel, -10.0, 10.0)], axis=1)

    def healthy(self, sim: MjRows) -> np.ndarray:
        """Rows whose state, height ``qpos[1]`` and angle ``qpos[2]`` are in their ranges."""
        (s_lo, s_hi), (z_lo, z_hi) = self.healthy_state_range, self.healthy_z_range
        a_lo, a_hi = self.healthy_angle_range
        state_ok = np.all((sim.qpos[:, 2:] > s_lo) & (sim.qpos[:, 2:] < s_hi), axis=1)
        state_ok &= np.all((sim.qvel > s_lo) & (sim.qvel < s_hi), axis=1)
        z, angle = sim.qpos[:, 1], sim.qpos[:, 2]
        return state_ok & (z > z_lo) & (z < z_hi) & (angle > a_lo) & (angle < a_hi)  # type: ignore[no-any-return]

    def reward(self, sim: MjRows, previous: MjRows, actions: np.ndarray) -> np.ndarray:
        """Forward velocity + healthy bonus - control cost."""
        velocity = (sim.qpos[:, 0] - previous.qpos[:, 0]) / sim.dt
        bonus = self.healthy(sim) * self.healthy_reward
        return (
            self.forward_reward_weight * velocity
            + bonus
            - _ctrl_cost(actions, self.ctrl_cost_weight)
        )

    def terminal(self, sim: MjRows) -> np.ndarray:
        """Unhealthy rows (when ``terminate_when_unhealthy``)."""
        return _unhealthy_rows(self, sim)

    def reset_state(
        self, rng: np.random.Generator, qpos0: np.ndarray, qvel0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform noise of ``reset_noise_scale`` on positions and velocities."""
        s = self.reset_noise_scale
        qpos = qpos0 + rng.uniform(low=-s, high=s, size=qpos0.shape[0])
        qvel = qvel0 + rng.uniform(low=-s, high=s, size=qvel0.shape[0])
        return qpos, qvel


class HalfCheetah(MujocoEnv):
    """``halfcheetah-v1``: Gymnasium's ``HalfCheetah-v5``, batched (the same keyword defaults).

    Observations are ``qpos[1:]`` and ``qvel`` (17 numbers); the reward is the forward velocity
    minus ``0.1 * |action|^2``; episodes never terminate and are truncated after 1000 steps.
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        xml_file: str | None = None,
        frame_skip: int = 5,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 0.1,
        reset_noise_scale: float = 0.1,
        max_episode_steps: int = 1000,
        **kwargs: Any,
    ) -> None:
        self.forward_reward_weight = float(forward_reward_weight)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.reset_noise_scale = float(reset_noise_scale)
        kwargs.setdefault("camera", {"distance": 4.0, "trackbodyid": 1})
        super().__init__(
            xml_file or gymnasium_asset("half_cheetah.xml"),
            num_envs,
            frame_skip=frame_skip,
            max_episode_steps=max_episode_steps,
            **kwargs,
        )

    def observe(self, sim: MjRows) -> np.ndarray:
        """``qpos[1:]`` then ``qvel``."""
        return np.concatenate([sim.qpos[:, 1:], sim.qvel], axis=1)

    def reward(self, sim: MjRows, previous: MjRows, actions: np.ndarray) -> np.ndarray:
        """Forward velocity - control cost."""
        velocity = (sim.qpos[:, 0] - previous.qpos[:, 0]) / sim.dt
        return self.forward_reward_weight * velocity - _ctrl_cost(actions, self.ctrl_cost_weight)

    def reset_state(
        self, rng: np.random.Generator, qpos0: np.ndarray, qvel0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform noise on positions, Gaussian noise on velocities."""
        s = self.reset_noise_scale
        qpos = qpos0 + rng.uniform(low=-s, high=s, size=qpos0.shape[0])
        qvel = qvel0 + s * rng.standard_normal(qvel0.shape[0])
        return qpos, qvel


class Ant(MujocoEnv):
    """``ant-v1``: Gymnasium's ``Ant-v5``, batched (the same keyword defaults).

    Observations are ``qpos[2:]``, ``qvel`` and the external contact forces
    ``clip(cfrc_ext[1:], -1, 1)`` (105 numbers); the reward is the torso's forward velocity
    plus 1 while healthy minus ``0.5 * |action|^2`` and ``5e-4 * |clipped cfrc_ext|^2``; an
    episode ends when the torso leaves ``0.2 <= z <= 1`` (or the state is not finite) or after
    1000 steps.
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        xml_file: str | None = None,
        frame_skip: int = 5,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 0.5,
        contact_cost_weight: float = 5e-4,
        healthy_reward: float = 1.0,
        main_body: int = 1,
        terminate_when_unhealthy: bool = True,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        contact_force_range: tuple[float, float] = (-1.0, 1.0),
        reset_noise_scale: float = 0.1,
        include_cfrc_ext_in_observation: bool = True,
        max_episode_steps: int = 1000,
        **kwargs: Any,
    ) -> None:
        self.forward_reward_weight = float(forward_reward_weight)
        self.ctrl_cost_weight = float(ctrl_cost_weight)
        self.contact_cost_weight = float(contact_cost_weight)
        self.healthy_reward = float(healthy_reward)
        self.main_body = int(main_body)
        self.terminate_when_unhealthy = bool(terminate_when_unhealthy)
        self.healthy_z_range = healthy_z_range
        self.contact_force_range = contact_force_range
        self.reset_noise_scale = float(reset_noise_scale)
        self.include_cfrc_ext_in_observation = bool(include_cfrc_ext_in_observation)
        kwargs.setdefault("camera", {"distance": 4.0, "trackbodyid": 1})
        super().__init__(
            xml_file or gymnasium_asset("ant.xml"),
            num_envs,
            frame_skip=frame_skip,
            max_episode_steps=max_episode_steps,
            fields=("qpos", "qvel", "cfrc_ext", "xpos"),
            post_constraint=True,
            **kwargs,
        )

    def _contact_forces(self, sim: MjRows) -> np.ndarray:
        low, high = self.contact_force_range
        return np.clip(sim.cfrc_ext, low, high)

    def observe(self, sim: MjRows) -> np.ndarray:
        """``qpos[2:]``, ``qvel`` and the clipped contact forces of every body but the world."""
        parts = [sim.qpos[:, 2:], sim.qvel]
        if self.include_cfrc_ext_in_observation:
            parts.append(self._contact_forces(sim)[:, 1:].reshape(sim.qpos.shape[0], -1))
        return np.concatenate(parts, axis=1)

    def healthy(self, sim: MjRows) -> np.ndarray:
        """Rows with a finite state and the torso height in ``healthy_z_range``."""
        low, high = self.healthy_z_range
        finite = np.isfinite(sim.qpos).all(axis=1) & np.isfinite(sim.qvel).all(axis=1)
        z = sim.qpos[:, 2]
        return finite & (z >= low) & (z <= high)  # type: ignore[no-any-return]

    def reward(self, sim: MjRows, previous: MjRows, actions: np.ndarray) -> np.ndarray:
        """Forward velocity + healthy bonus - control cost - contact cost."""
        body = self.main_body
        velocity = (sim.xpos[:, body, 0] - previous.xpos[:, body, 0]) / sim.dt
        forces = self._contact_forces(sim)
        contact = self.contact_cost_weight * np.square(forces).sum(axis=(1, 2))
        bonus = self.healthy(sim) * self.healthy_reward
        ctrl = _ctrl_cost(actions, self.ctrl_cost_weight)
        return self.forward_reward_weight * velocity + bonus - ctrl - contact  # type: ignore[no-any-return]

    def terminal(self, sim: MjRows) -> np.ndarray:
        """Unhealthy rows (when ``terminate_when_unhealthy``)."""
        return _unhealthy_rows(self, sim)

    def reset_state(
        self, rng: np.random.Generator, qpos0: np.ndarray, qvel0: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform noise on positions, Gaussian noise on velocities."""
        s = self.reset_noise_scale
        qpos = qpos0 + rng.uniform(low=-s, high=s, size=qpos0.shape[0])
        qvel = qvel0 + s * rng.standard_normal(qvel0.shape[0])
        return qpos, qvel
