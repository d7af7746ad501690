"""fugu's core: the env contract, buffers, emulation, errors, registry and checker.

This package imports only numpy and ``gymnasium.spaces``-level gymnasium: never torch.
"""

from fugu.core.env import EnvBuffers, Infos, PufferEnv, StepResult
from fugu.core.errors import (
    APIUsageError,
    EnvContractError,
    FuguError,
    MissingDependencyError,
    UnknownEnvError,
    WorkerError,
)
from fugu.core.registry import EnvSpec, Registry, make, register, registered_ids
from fugu.core.schema import STANDARD_FIELD_NAMES, Field
from fugu.core.vec import VecBatch, VecEnv

__all__ = [
    "STANDARD_FIELD_NAMES",
    "APIUsageError",
    "EnvBuffers",
    "EnvContractError",
    "EnvSpec",
    "Field",
    "FuguError",
    "Infos",
    "MissingDependencyError",
    "PufferEnv",
    "Registry",
    "StepResult",
    "UnknownEnvError",
    "VecBatch",
    "VecEnv",
    "WorkerError",
    "make",
    "register",
    "registered_ids",
]
