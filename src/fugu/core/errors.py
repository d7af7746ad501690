"""Errors raised by fugu. Every message says what went wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "APIUsageError",
    "EnvContractError",
    "FuguError",
    "MissingDependencyError",
    "UnknownEnvError",
    "WorkerError",
]


class FuguError(Exception):
    """Base class of every error fugu raises on purpose."""


class APIUsageError(FuguError, RuntimeError):
    """A fugu object was used in the wrong way (for example ``recv`` before ``async_reset``)."""


class EnvContractError(FuguError, ValueError):
    """An env does not follow the env contract (spaces, dtypes, shapes, autoreset, masks)."""


class UnknownEnvError(FuguError, KeyError):
    """An env id is not registered with fugu nor known to Gymnasium."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class WorkerError(FuguError, RuntimeError):
    """A vectorization worker raised an exception or died; the message carries its traceback."""


class MissingDependencyError(FuguError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def missing_dependency(module: str, extra: str) -> MissingDependencyError:
    """Build the error raised when an optional dependency cannot be imported.

    Args:
        module: The module that failed to import.
        extra: The fugu extra that installs it.

    Returns:
        An error whose message tells the user which extra to install.

    Example:
        >>> str(missing_dependency("wandb", "wandb"))
        "fugu needs 'wandb' for this feature: pip install 'fugu-rl[wandb]'"
    """
    return MissingDependencyError(
        f"fugu needs {module!r} for this feature: pip install 'fugu-rl[{extra}]'"
    )
