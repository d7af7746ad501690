"""fugu vec env -> Stable-Baselines3 ``VecEnv``.

Any fugu :class:`~fugu.core.vec.VecEnv` becomes an SB3 vec env with one sub-env per row, so
SB3's algorithms (PPO, A2C, DQN, SAC, ...) train on fugu envs directly:

* ``observation_space`` / ``action_space`` are the fugu env's single spaces, ``num_envs`` is
  its number of rows.
* Each row's info dict carries ``TimeLimit.truncated`` (truncated and not terminated, as
  SB3's ``DummyVecEnv`` sets it), and on rows whose episode ended, ``terminal_observation``
  (fugu autoresets on the same step, so the returned observation is already the next
  episode's) and ``episode = {"r", "l", "t"}`` as SB3's ``Monitor`` writes it, so
  ``ep_info_buffer``, the ``rollout/ep_rew_mean`` log and ``evaluate_policy`` work without a
  ``Monitor``/``VecMonitor``; ``env_is_wrapped(Monitor)`` answers ``True`` for that reason.
* fugu's aggregated infos are kept in ``fugu_infos``.
* All rows live in one env object, so ``get_attr`` and ``env_method`` read or call that object
  once and repeat the answer for each requested index, and ``set_attr`` sets it for all rows
  (a subset of indices is an error). Declared extra fields (:mod:`fugu.core.schema`) are
  per-row: ``get_attr("costs")`` gives each requested row its own entry, and when the env
  declares ``action_masks``, ``env_method("action_masks")`` returns each row's mask (a copy),
  which is what sb3-contrib's ``MaskablePPO`` (``get_action_masks``) calls.
* Masked (dead) rows are passed through as ordinary rows (see
  :mod:`fugu.bridges.gymnasium_vector`); SB3 has no notion of them, so train SB3 on envs
  without dead rows.

``stable_baselines3`` is optional: importing this module works without it, and the class is
built on first use (:func:`to_sb3` or ``from fugu.bridges.sb3 import FuguSB3VecEnv``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fugu.bridges._common import EpisodeTracker, check_vec_env, fugu_seed
from fugu.core.errors import APIUsageError, missing_dependency
from fugu.core.vec import VecEnv as FuguVecEnv

__all__ = ["FuguSB3VecEnv", "to_sb3"]

Indices = None | int | Iterable[int]

if TYPE_CHECKING:  # pragma: no cover
    FuguSB3VecEnv: type  # built on first access by the module __getattr__ below


class _FuguSB3Methods:
    """The SB3 ``VecEnv`` methods, mixed in front of SB3's base class by :func:`_sb3_class`."""

    num_envs: int
    render_mode: str | None
    reset_infos: list[dict[str, Any]]
    _seeds: list[int | None]
    _options: list[dict[str, Any]]

    def __init__(self, env: FuguVecEnv, copy: bool = True) -> None:
        self.env = check_vec_env(env)
        self.copy = copy
        self.fugu_infos: list[dict[str, Any]] = []
        num_rows = int(env.num_agents)
        self._tracker = EpisodeTracker(num_rows)
        self._actions: np.ndarray | None = None
        self._started = False
        self._t_start = time.perf_counter()
        super().__init__(num_rows, env.single_observation_space, env.single_action_space)  # type: ignore[call-arg]

    # -- stepping ---------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        """Reset every row with the seeds given to ``seed()`` (used once) and return the obs."""
        if any(self._options):
            raise APIUsageError(
                "fugu envs take no reset options: pass settings to the env's constructor"
            )
        observations, fugu_infos = self.env.reset(fugu_seed(self._seeds, self.num_envs))  # type: ignore[arg-type]
        self.fugu_infos = list(fugu_infos)
        self._tracker.reset(self.env.masks)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._seeds = [None] * self.num_envs
        self._options = [{} for _ in range(self.num_envs)]
        self._started = True
        return observations.copy() if self.copy else observations

    def step_async(self, actions: np.ndarray) -> None:
        """Store ``actions`` (one per row) for the next :meth:`step_wait`."""
        if not self._started:
            raise APIUsageError("step_async() called before reset(); call reset() first")
        actions = np.asarray(actions)
        expected = self.env.actions.shape
        if actions.shape != expected:
            if actions.size != int(np.prod(expected)):
                raise APIUsageError(
                    f"actions must have shape {expected} (one row per env), got {actions.shape}"
                )
            actions = actions.reshape(expected)  # e.g. (n, 1) from a Discrete policy
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every row and return SB3's ``(obs, rewards, dones, infos)``."""
        if self._actions is None:
            raise APIUsageError("step_wait() called without step_async(); call step_async()")
        actions, self._actions = self._actions, None
        observations, rewards, terminals, truncations, fugu_infos = self.env.step(actions)
        self.fugu_infos = list(fugu_infos)
        dones = terminals | truncations
        reported = self._tracker.update(rewards, dones, self.env.masks)
        time_limit = truncations & ~terminals
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": bool(t)} for t in time_limit]
        if dones.any():
            elapsed = round(time.perf_counter() - self._t_start, 6)
            final = self.env.final_observations
            for row in np.flatnonzero(dones):
                infos[row]["terminal_observation"] = final[row].copy()
                if reported[row]:
                    infos[row]["episode"] = {
                        "r": float(self._tracker.last_returns[row]),
                        "l": int(self._tracker.last_lengths[row]),
                        "t": elapsed,
                    }
        obs = observations.copy() if self.copy else observations
        return obs, np.array(rewards, copy=True), dones, infos

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next :meth:`reset`: row ``i`` gets ``seed + i`` (a fresh seed if ``None``)."""
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 2**31 - 1 - self.num_envs))
        self._seeds = [int(seed) + row for row in range(self.num_envs)]
        return self._seeds

    def close(self) -> None:
        """Close the fugu env. Idempotent."""
        self.env.close()

    # -- attributes and methods of the env --------------------------------------------------
    def get_attr(self, attr_name: str, indices: Indices = None) -> list[Any]:
        """The fugu env's attribute ``attr_name``, once per requested row."""
        extras = getattr(self.env, "extras", {})
        if attr_name in extras:  # a declared per-row field: each row gets its own entry
            return [extras[attr_name][row] for row in self._rows(indices)]
        if attr_name == "render_mode":  # SB3 asks for it at construction
            value = getattr(self.env, attr_name, None)
        else:
            value = getattr(self.env, attr_name)
        return [value for _ in self._rows(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Indices = None) -> None:
        """Set ``attr_name`` on the fugu env, which holds every row (so all rows get it)."""
        if sorted(self._rows(indices)) != list(range(self.num_envs)):
            raise APIUsageError(
                "all rows share one fugu env object, so set_attr() sets an attribute for every "
                "row: call it with indices=None"
            )
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Indices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call the fugu env's method once and return its result once per requested row."""
        rows = self._rows(indices)
        extras = getattr(self.env, "extras", {})
        if method_name == "action_masks" and "action_masks" in extras:  # sb3-contrib masks
            masks = extras["action_masks"]
            return [masks[row].copy() for row in rows]
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in rows]

    def env_is_wrapped(self, wrapper_class: type, indices: Indices = None) -> list[bool]:
        """``True`` only for SB3's ``Monitor``, whose episode statistics this bridge reports."""
        from stable_baselines3.common.monitor import Monitor

        return [wrapper_class is Monitor for _ in self._rows(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One RGB frame per row from the fugu env's ``render(row)``."""
        render = getattr(self.env, "render", None)
        if render is None:
            raise APIUsageError(f"{type(self.env).__name__} has no render(row) method")
        return [render(row) for row in range(self.num_envs)]

    def _rows(self, indices: Indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        rows = [indices] if isinstance(indices, (int, np.integer)) else list(indices)
        for row in rows:
            if not 0 <= int(row) < self.num_envs:
                raise APIUsageError(f"row index {row} out of range for {self.num_envs} rows")
        return [int(row) for row in rows]


@functools.cache
def _sb3_class() -> type:
    """Build the SB3 vec env class (SB3's base class is needed at class-creation time)."""
    try:
        from stable_baselines3.common.vec_env import VecEnv as SB3VecEnv
    except ImportError as error:
        raise missing_dependency("stable_baselines3", "sb3") from error
    cls = type(
        "FuguSB3VecEnv",
        (_FuguSB3Methods, SB3VecEnv),
        {
            "__module__": __name__,
            "__qualname__": "FuguSB3VecEnv",
            "__doc__": _CLASS_DOC,
        },
    )
    return cls


_CLASS_DOC = """A fugu vec env seen as a Stable-Baselines3 ``VecEnv`` (one sub-env per row).

    Args:
        env: Any fugu :class:`~fugu.core.vec.VecEnv`; closing the bridge closes it.
        copy: Return copies of the observations (SB3 keeps the previous observation while it
            steps, so leave this ``True`` unless you know the consumer copies).
    """


def to_sb3(env: FuguVecEnv, copy: bool = True) -> Any:
    """Wrap a fugu vec env as a Stable-Baselines3 ``VecEnv``.

    Args:
        env: Any fugu :class:`~fugu.core.vec.VecEnv`.
        copy: Return copies of the observations rather than views of the env's buffer.

    Returns:
        A ``FuguSB3VecEnv``, subclass of ``stable_baselines3.common.vec_env.VecEnv``.

    Raises:
        MissingDependencyError: stable-baselines3 is not installed.
    """
    return _sb3_class()(env, copy=copy)


def __getattr__(name: str) -> Any:
    if name == "FuguSB3VecEnv":
        return _sb3_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
