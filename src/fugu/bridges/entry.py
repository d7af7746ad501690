"""Envs named by an entry point, ``"package.module:factory"``, wrapped into the fugu contract.

The command line takes an env id; an entry point works wherever an id does (``fugu train
my_envs:make_arena``), for any factory that returns a fugu env, a Gymnasium env or a
PettingZoo parallel env (or class of one). :class:`EntryPointEnv` is picklable (it holds
the string, not the factory), so spawned Multiprocessing workers import the factory
themselves.

Example:
    >>> env = EntryPointEnv("gymnasium.envs.classic_control.cartpole:CartPoleEnv")()
    >>> env.single_observation_space.shape, env.num_agents
    ((4,), 1)
    >>> env.close()
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from fugu.core.env import EnvBuffers
from fugu.core.errors import APIUsageError

__all__ = ["EntryPointEnv", "is_entry_point", "make_env"]


def is_entry_point(env_id: str) -> bool:
    """Whether ``env_id`` names an entry point (``module:attr``) rather than a registered id.

    Example:
        >>> is_entry_point("my_envs:make_arena"), is_entry_point("cartpole-v1")
        (True, False)
    """
    module, colon, attr = env_id.partition(":")
    return bool(colon and module and attr.isidentifier())


@dataclass(frozen=True)
class EntryPointEnv:
    """Builds the env an entry point's factory returns, wrapped into the fugu contract.

    Args:
        entry_point: ``"package.module:attr"``; ``attr`` is called with the env kwargs.
    """

    entry_point: str

    def load(self) -> Any:
        """Import the factory."""
        if not is_entry_point(self.entry_point):
            raise APIUsageError(
                f"{self.entry_point!r} is not an entry point: write 'package.module:factory'"
            )
        module_name, _, attr = self.entry_point.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise APIUsageError(
                f"cannot import {module_name!r} for {self.entry_point}: {error}"
            ) from None
        if not hasattr(module, attr):
            raise APIUsageError(f"{module_name!r} has no attribute {attr!r} ({self.entry_point})")
        return getattr(module, attr)

    def __call__(self, buffers: EnvBuffers | None = None, **kwargs: Any) -> Any:
        """Build the env (adopting ``buffers`` when a vectorizer passes them)."""
        factory = self.load()
        takes_buffers = _accepts(factory, "buffers")
        made = factory(**kwargs, **({"buffers": buffers} if takes_buffers and buffers else {}))
        if hasattr(made, "single_observation_space") and hasattr(made, "num_agents"):
            if buffers is not None and not takes_buffers:
                raise APIUsageError(
                    f"{self.entry_point} returns a fugu env but takes no buffers=...: accept "
                    "buffers and pass them to PufferEnv.__init__ to run it in a vectorizer"
                )
            return made
        if hasattr(made, "possible_agents") or (
            inspect.isclass(made) and hasattr(made, "possible_agents")
        ):
            from fugu.bridges.pettingzoo import PettingZooPufferEnv

            return PettingZooPufferEnv(made, buffers=buffers)
        import gymnasium

        if isinstance(made, gymnasium.Env):
            from fugu.core.emulation import GymnasiumPufferEnv

            return GymnasiumPufferEnv(made, buffers=buffers)
        raise APIUsageError(
            f"{self.entry_point} returned {type(made).__name__}: expected a fugu env, a "
            "Gymnasium env or a PettingZoo parallel env"
        )


def make_env(env_id: str, **kwargs: Any) -> Any:
    """:func:`fugu.make` that also takes entry points (``"package.module:factory"``)."""
    if is_entry_point(env_id):
        return EntryPointEnv(env_id)(**kwargs)
    from fugu.core.registry import make

    return make(env_id, **kwargs)


def _accepts(factory: Any, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
