"""Clone rows of a native env into another: the "true model" that planners step in batch.

A native env keeps its whole state in arrays with one leading index per copy
(:meth:`fugu.envs.native.NativeEnv.get_state`), so copying row ``r`` of one env into every row
of a second env of the same class gives ``population`` identical copies of that state, which a
planner then steps with ``population`` different action sequences in one kernel call.

:func:`clone_rows` copies the physics, the generator and the observation of the chosen source
rows and starts the copies' episode counters at zero, so a horizon shorter than the env's time
limit never truncates (an autoreset mid-horizon would make the rest of the rollout meaningless).

Example:
    >>> import numpy as np
    >>> from fugu.envs.pendulum import Pendulum
    >>> source = Pendulum(num_envs=1, seed=0)
    >>> _ = source.reset()
    >>> copies = Pendulum(num_envs=4, seed=1)
    >>> _ = copies.reset()
    >>> clone_rows(source, copies, 0)
    >>> bool((copies.observations == source.observations[0]).all())
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError
from fugu.envs.native import NativeEnv

__all__ = ["clone_rows", "make_copies"]

_COUNTERS = ("episode_return", "episode_length", "episode_stats")


def make_copies(source: NativeEnv, population: int) -> NativeEnv:
    """A fresh env of ``source``'s class with ``population`` copies, to clone rows into.

    Args:
        source: A single-agent native env built with its class's defaults.
        population: Copies in the new env.
    """
    if source.agents_per_env != 1:
        raise APIUsageError("planning with the true env needs a single-agent native env")
    factory: Any = type(source)  # native env constructors share the (num_envs, seed=) convention
    copies: NativeEnv = factory(num_envs=int(population), seed=0)
    copies.reset()
    return copies


def clone_rows(source: NativeEnv, target: NativeEnv, rows: int | np.ndarray) -> None:
    """Copy copy ``rows`` of ``source`` into the copies of ``target``.

    Args:
        source: The env whose state is copied (not modified).
        target: An env of the same class; its copy ``j`` receives source copy ``rows[j]``
            (an int: every copy receives that one).
        rows: One source copy index, or one per target copy.
    """
    if type(source) is not type(target):
        raise APIUsageError(
            f"clone_rows needs two envs of one class, got {type(source).__name__} and "
            f"{type(target).__name__}"
        )
    if source.agents_per_env != 1:
        raise APIUsageError("clone_rows supports single-agent native envs (one row per copy)")
    index = np.broadcast_to(np.asarray(rows, dtype=np.int64), (target.num_copies,))
    if index.min() < 0 or index.max() >= source.num_copies:
        raise APIUsageError(f"source rows must lie in [0, {source.num_copies}), got {rows!r}")
    target._wait_all()
    source._wait_all()
    for name, array in target.state.items():
        if name == "steps":
            continue
        if name in _COUNTERS:
            array[...] = 0
            continue
        array[...] = source.state[name][index]
    target.observations[...] = source.observations[index]
    target.rewards[:] = 0.0
    target.terminals[:] = False
    target.truncations[:] = False
