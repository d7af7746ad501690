"""MuJoCo as batched fugu envs: any MJCF model (:mod:`.base`) and Gymnasium's locomotion tasks
(:mod:`.locomotion`). Needs ``pip install 'fugu-rl[mujoco]'``; render headless with
``MUJOCO_GL=egl``."""

from __future__ import annotations

from fugu.envs.mujoco.base import MjRows, MujocoEnv, load_model, scale_mass_friction
from fugu.envs.mujoco.locomotion import Ant, HalfCheetah, Hopper, gymnasium_asset

__all__ = [
    "Ant",
    "HalfCheetah",
    "Hopper",
    "MjRows",
    "MujocoEnv",
    "gymnasium_asset",
    "load_model",
    "scale_mass_friction",
]
