"""fugu: fast, complete reinforcement learning on one data plane.

Importing ``fugu`` is cheap and imports no torch: names below are loaded on first use.

Train and use an agent in three names (see ``docs/python-api.md``)::

    agent = fugu.train("cartpole-v1", total_timesteps=200_000)   # or fugu.learn(...)
    action = agent.predict(observation)
    agent = fugu.load("runs/<run>")                               # its best checkpoint

Example:
    >>> import fugu
    >>> "cartpole-v1" in fugu.registered_ids() or True
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "APIUsageError": "fugu.core.errors",
    "EnvContractError": "fugu.core.errors",
    "FuguError": "fugu.core.errors",
    "UnknownEnvError": "fugu.core.errors",
    "WorkerError": "fugu.core.errors",
    "PufferEnv": "fugu.core.env",
    "EnvBuffers": "fugu.core.env",
    "VecEnv": "fugu.core.vec",
    "VecBatch": "fugu.core.vec",
    "make": "fugu.core.registry",
    "register": "fugu.core.registry",
    "registered_ids": "fugu.core.registry",
    "check_env": "fugu.core.checker",
    "Agent": "fugu.train.agent",
    "learn": "fugu.train.agent",
    "load": "fugu.train.agent",
}

__all__ = ["__version__", "train", *sorted(_LAZY)]

if TYPE_CHECKING:  # pragma: no cover
    from fugu.core.checker import check_env
    from fugu.core.env import EnvBuffers, PufferEnv
    from fugu.core.errors import (
        APIUsageError,
        EnvContractError,
        FuguError,
        UnknownEnvError,
        WorkerError,
    )
    from fugu.core.registry import make, register, registered_ids
    from fugu.core.vec import VecBatch, VecEnv


def __getattr__(name: str) -> Any:
    if name == "train":  # the package fugu.train, callable as fugu.learn
        return importlib.import_module("fugu.train")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fugu' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
