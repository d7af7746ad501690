"""``check_env``: validate a fugu env or vec env against the env contract (numpy only).

The checker runs an env for a few seeded steps with random actions and raises
:class:`~fugu.core.errors.EnvContractError` naming the first problem it finds: the spaces, the
shape and dtype of every buffer, that ``reset``/``step`` return views of the buffers, that
observations lie in the observation space, the infos format, same-step autoreset with
``final_observations``, seeded determinism, the ``async_reset``/``send``/``recv`` surface and an
idempotent ``close``.

Example:
    >>> from fugu.core.emulation import GymnasiumPufferEnv
    >>> check_env(lambda: GymnasiumPufferEnv.from_id("CartPole-v1"), num_steps=50)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from fugu.core.env import EnvBuffers
from fugu.core.errors import EnvContractError
from fugu.core.schema import STANDARD_FIELD_NAMES

__all__ = ["check_env"]

_BUFFERS = STANDARD_FIELD_NAMES


def _check_not_gymnasium(env: Any) -> None:
    """A raw Gymnasium env is not a fugu env: say how to wrap it (instead of a missing
    attribute error further in)."""
    if hasattr(env, "single_observation_space") or not hasattr(env, "observation_space"):
        return
    if hasattr(env, "num_envs"):
        hint = "fugu.vector.make(ENV_ID, ...) builds a fugu vec env from a Gymnasium id"
    else:
        hint = (
            "wrap it first: fugu.core.emulation.GymnasiumPufferEnv(env), or build it with "
            "fugu.make('<gymnasium id>')"
        )
    raise EnvContractError(
        f"{type(env).__name__} is a Gymnasium env, not a fugu env (no single_observation_space, "
        f"no row buffers); {hint}"
    )


def check_env(env_or_factory: Any | Callable[[], Any], num_steps: int = 200, seed: int = 0) -> None:
    """Validate an env (or vec env) against the fugu env contract.

    Args:
        env_or_factory: A fugu env / vec env, or a zero-argument callable building one. With a
            factory, determinism is checked across two instances and both are closed.
        num_steps: Steps to run per phase (random actions, seeded).
        seed: Seed for ``reset`` and for the random actions.

    Raises:
        EnvContractError: Naming what is wrong and what the contract expects.
    """
    is_env = hasattr(env_or_factory, "reset") and not isinstance(env_or_factory, type)
    factory = None if is_env else env_or_factory
    env = factory() if factory is not None else env_or_factory
    _check_not_gymnasium(env)
    try:
        _check_attributes(env)
        _check_buffers(env)
        first = _run(env, num_steps, seed)
        second_env = factory() if factory is not None else env
        try:
            second = _run(second_env, num_steps, seed)
        except BaseException:
            if second_env is not env:
                _close_quietly(second_env)
            raise
        if second_env is not env:
            _check_close(second_env)
        _compare(first, second, seed, across_instances=second_env is not env)
        _check_autoreset(first)
        _check_vec_surface(env, num_steps, seed)
    except BaseException as exc:
        if factory is not None:
            _close_quietly(env)
        if isinstance(exc, EnvContractError) or not isinstance(exc, Exception):
            raise
        raise EnvContractError(
            f"{type(env).__name__} raised {type(exc).__name__} while being checked: {exc}"
        ) from exc
    _check_close(env)


def _close_quietly(env: Any) -> None:
    with contextlib.suppress(Exception):  # the error being raised already says what is wrong
        env.close()


# -- static checks ----------------------------------------------------------------------------
def _check_attributes(env: Any) -> None:
    name = type(env).__name__
    for attr in ("single_observation_space", "single_action_space", "num_agents", *_BUFFERS):
        if not hasattr(env, attr):
            raise EnvContractError(f"{name} has no attribute {attr!r}; the contract requires it")
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(obs_space, spaces.Box):
        raise EnvContractError(
            f"{name}.single_observation_space must be a gymnasium Box, got {obs_space!r}; "
            "flatten structured spaces with fugu.core.flatten.SpaceLayout"
        )
    if not isinstance(act_space, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)):
        raise EnvContractError(
            f"{name}.single_action_space must be Discrete, MultiDiscrete or Box, got "
            f"{act_space!r}; carry structured actions with fugu.core.actions.ActionLayout"
        )
    if isinstance(act_space, spaces.MultiDiscrete) and act_space.nvec.ndim != 1:
        raise EnvContractError(f"{name}.single_action_space MultiDiscrete must be 1-D")
    num_agents = env.num_agents
    if not isinstance(num_agents, (int, np.integer)) or num_agents < 1:
        raise EnvContractError(f"{name}.num_agents must be an int >= 1, got {num_agents!r}")
    for method in ("reset", "step", "close"):
        if not callable(getattr(env, method, None)):
            raise EnvContractError(f"{name} has no {method}() method")


def _check_buffers(env: Any) -> None:
    extra_fields = getattr(env, "extra_fields", {})
    extras = getattr(env, "extras", {})
    if sorted(extras) != sorted(extra_fields):
        raise EnvContractError(
            f"{type(env).__name__}.extras has fields {sorted(extras)} but extra_fields declares "
            f"{sorted(extra_fields)}"
        )
    layout = EnvBuffers.layout(
        env.single_observation_space, env.single_action_space, int(env.num_agents), extra_fields
    )
    for buffer, (shape, dtype) in layout.items():
        array = extras[buffer] if buffer in extra_fields else getattr(env, buffer)
        if not isinstance(array, np.ndarray):
            raise EnvContractError(
                f"{type(env).__name__}.{buffer} must be a numpy array, got {type(array).__name__}"
            )
        if array.shape != shape:
            raise EnvContractError(
                f"{type(env).__name__}.{buffer} must have shape {shape} "
                f"(num_agents={env.num_agents}), got {array.shape}"
            )
        if array.dtype != dtype:
            raise EnvContractError(
                f"{type(env).__name__}.{buffer} must have dtype {dtype}, got {array.dtype}"
            )


def _check_views(env: Any, method: str, returned: dict[str, Any]) -> None:
    for buffer, value in returned.items():
        target = getattr(env, buffer)
        if not isinstance(value, np.ndarray) or not np.shares_memory(value, target):
            raise EnvContractError(
                f"{type(env).__name__}.{method}() must return {buffer} as a view of "
                f"env.{buffer} (write the buffer in place and return it), got a copy or "
                "another array"
            )
        if value.shape != target.shape or value.dtype != target.dtype:
            raise EnvContractError(
                f"{type(env).__name__}.{method}() returned {buffer} with shape {value.shape} "
                f"and dtype {value.dtype}; expected the buffer's {target.shape} {target.dtype}"
            )


def _check_infos(env: Any, method: str, infos: Any, num_done: int | None = None) -> None:
    """``infos`` is a list of dicts, at most one per ended episode (or one) on a step."""
    if not isinstance(infos, list) or not all(isinstance(info, dict) for info in infos):
        raise EnvContractError(
            f"{type(env).__name__}.{method}() must return infos as a list of dicts "
            f"(aggregated episode statistics), got {type(infos).__name__}"
        )
    limit = max(1, int(env.num_agents) if num_done is None else num_done)
    if len(infos) > limit:
        raise EnvContractError(
            f"{type(env).__name__}.{method}() returned {len(infos)} info dicts on a step where "
            f"{num_done} rows ended an episode; aggregate episode statistics (at most one dict "
            "per ended episode, or one summary dict) instead of returning one dict per row"
        )
    for info in infos:
        for key in info:
            if not isinstance(key, str):
                raise EnvContractError(f"info keys must be strings, got {key!r}")


def _check_in_space(env: Any, array: np.ndarray, rows: np.ndarray, what: str) -> None:
    space: spaces.Box = env.single_observation_space
    values = array[rows]
    if not values.size:
        return
    if np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
        raise EnvContractError(f"{type(env).__name__} wrote NaN into {what}")
    low = np.broadcast_to(space.low, space.shape)
    high = np.broadcast_to(space.high, space.shape)
    bad = (values < low) | (values > high)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        row = int(np.flatnonzero(rows)[index[0]])
        raise EnvContractError(
            f"{type(env).__name__} wrote {what} outside single_observation_space: row {row}, "
            f"element {index[1:]} = {values[index].item()} not in [{low[index[1:]].item()}, "
            f"{high[index[1:]].item()}]"
        )


# -- running ----------------------------------------------------------------------------------
def _sample_actions(space: spaces.Space, num_rows: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, int(space.n), size=num_rows).astype(np.int32)
    if isinstance(space, spaces.MultiDiscrete):
        return rng.integers(0, space.nvec, size=(num_rows, *space.nvec.shape)).astype(np.int32)
    low = np.where(np.isfinite(space.low), space.low, -1.0)  # type: ignore[attr-defined]
    high = np.where(np.isfinite(space.high), space.high, 1.0)  # type: ignore[attr-defined]
    return rng.uniform(low, high, size=(num_rows, *space.shape)).astype(np.float32)


def _sentinel(space: spaces.Box) -> Any:
    """A value outside the observation space (None when the dtype has none)."""
    dtype = np.dtype(space.dtype)
    if np.issubdtype(dtype, np.floating):
        return np.nan
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if np.min(space.low) > info.min:
            return info.min
        if np.max(space.high) < info.max:
            return info.max
    return None


def _check_idle_rows(env: Any, acted: np.ndarray, in_episode: np.ndarray, step: int) -> None:
    """Rows masked before a step whose agent has not been live in the current episode (it has
    not joined yet, or its episode ended) carry no reward and no flags. A row that was live
    earlier in the episode may be masked while it waits (a board game's other player) and
    still get the reward and the flags of the step that ends its episode."""
    idle = ~np.asarray(acted, dtype=bool) & ~in_episode
    if not idle.any():
        return
    wrong = idle & ((env.rewards != 0) | env.terminals | env.truncations)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise EnvContractError(
            f"{type(env).__name__} gave row {row} at step {step} a reward of "
            f"{float(env.rewards[row])}, terminal={bool(env.terminals[row])}, "
            f"truncation={bool(env.truncations[row])} although the row was masked before the "
            "step and has not been live in this episode: masked rows must carry zero reward "
            "and no flags until their agent is live"
        )


def _run(env: Any, num_steps: int, seed: int) -> dict[str, Any]:
    """Reset with ``seed`` and step with seeded random actions, checking every step."""
    name = type(env).__name__
    result = env.reset(seed=seed)
    if not isinstance(result, tuple) or len(result) != 2:
        raise EnvContractError(f"{name}.reset(seed) must return (observations, infos)")
    obs, infos = result
    _check_views(env, "reset", {"observations": obs})
    _check_infos(env, "reset", infos)
    if env.masks.dtype != np.bool_:
        raise EnvContractError(f"{name}.masks must be bool, got {env.masks.dtype}")
    _check_in_space(env, env.observations, env.masks.copy(), "observations after reset")
    rng = np.random.default_rng(seed)
    sentinel = _sentinel(env.single_observation_space)
    trace: dict[str, Any] = {"name": name, "steps": [], "obs_varies": False, "done_events": []}
    previous = env.observations.copy()
    trace["steps"].append((previous, None, None, None, env.masks.copy()))
    in_episode = env.masks.copy()  # rows live at some point of their current episode
    for step in range(num_steps):
        actions = _sample_actions(env.single_action_space, int(env.num_agents), rng)
        if sentinel is not None:
            env.final_observations[...] = sentinel
        result = env.step(actions)
        if not isinstance(result, tuple) or len(result) != 5:
            raise EnvContractError(
                f"{name}.step(actions) must return (observations, rewards, terminals, "
                "truncations, infos)"
            )
        obs, rewards, terminals, truncations, infos = result
        _check_views(
            env,
            "step",
            {
                "observations": obs,
                "rewards": rewards,
                "terminals": terminals,
                "truncations": truncations,
            },
        )
        _check_buffers(env)
        _check_idle_rows(env, trace["steps"][-1][4], in_episode, step)
        masks = env.masks.copy()
        in_episode = (in_episode & ~(env.terminals | env.truncations)) | masks
        _check_in_space(env, env.observations, masks, f"observations at step {step}")
        # rows whose episode ended on this step (an agent that ended is already masked)
        done = env.terminals | env.truncations
        _check_infos(env, "step", infos, int(done.sum()))
        if done.any():
            if sentinel is not None:
                finals = env.final_observations[done]
                unwritten = np.isnan(finals) if sentinel is np.nan else finals == sentinel
                if unwritten.reshape(len(finals), -1).all(axis=1).any():
                    row = int(np.flatnonzero(done)[0])
                    raise EnvContractError(
                        f"{name} ended an episode on row {row} at step {step} without writing "
                        "final_observations[row]: same-step autoreset must copy the "
                        "observation that ended the episode there"
                    )
            _check_in_space(env, env.final_observations, done, f"final_observations at step {step}")
            trace["done_events"].append(
                (env.final_observations[done].copy(), env.observations[done].copy())
            )
        current = env.observations.copy()
        live = masks & ~done
        if live.any() and not np.array_equal(current[live], previous[live], equal_nan=True):
            trace["obs_varies"] = True
        trace["steps"].append(
            (current, env.rewards.copy(), env.terminals.copy(), env.truncations.copy(), masks)
        )
        previous = current
    return trace


def _compare(
    first: dict[str, Any], second: dict[str, Any], seed: int, *, across_instances: bool
) -> None:
    where = "two instances" if across_instances else "two resets of one instance"
    names = ("observations", "rewards", "terminals", "truncations", "masks")
    for step, (a, b) in enumerate(zip(first["steps"], second["steps"])):
        for name, x, y in zip(names, a, b):
            if x is None:
                continue
            if not np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.floating)):
                rows = np.flatnonzero(np.any((x != y).reshape(len(x), -1), axis=1))
                raise EnvContractError(
                    f"{first['name']} is not deterministic: with reset(seed={seed}) and the same "
                    f"actions, {name} differ between {where} at step {step} (rows "
                    f"{rows[:8].tolist()}); seed every random generator from reset's seed"
                )


def _check_autoreset(trace: dict[str, Any]) -> None:
    events = trace["done_events"]
    if len(events) < 3 or not trace["obs_varies"]:
        return  # too few episodes, or constant observations: nothing to tell apart
    if all(np.array_equal(final, obs, equal_nan=True) for final, obs in events):
        raise EnvContractError(
            f"{trace['name']} does not seem to autoreset: on every step that ended an episode "
            "the observations equal final_observations. The step that ends an episode must "
            "write the next episode's first observation into observations"
        )


def _check_vec_surface(env: Any, num_steps: int, seed: int) -> None:
    name = type(env).__name__
    for method in ("async_reset", "send", "recv"):
        if not callable(getattr(env, method, None)):
            raise EnvContractError(f"{name} has no {method}() method (the VecEnv protocol)")
    rng = np.random.default_rng(seed + 1)
    env.async_reset(seed)
    for _ in range(min(num_steps, 32)):
        batch = env.recv()
        fields = ("observations", "rewards", "terminals", "truncations", "final_observations")
        for field in (*fields, "infos", "env_ids", "masks"):
            if not hasattr(batch, field):
                raise EnvContractError(f"{name}.recv() must return a VecBatch; no {field!r}")
        env_ids = np.asarray(batch.env_ids)
        num = len(env_ids)
        if num == 0 or env_ids.min() < 0 or env_ids.max() >= env.num_agents:
            raise EnvContractError(f"{name}.recv() returned env_ids {env_ids} out of range")
        for field in (*fields, "masks"):
            array = getattr(batch, field)
            if not isinstance(array, np.ndarray) or len(array) != num:
                raise EnvContractError(
                    f"{name}.recv() field {field} must be an array with one row per env_id "
                    f"({num}), got {getattr(array, 'shape', type(array).__name__)}"
                )
            if not np.shares_memory(array, getattr(env, field)):
                raise EnvContractError(
                    f"{name}.recv() field {field} must be a view of env.{field}, not a copy"
                )
        _check_infos(env, "recv", batch.infos, int(np.sum(batch.terminals | batch.truncations)))
        env.send(_sample_actions(env.single_action_space, num, rng))
    env.recv()


def _check_close(env: Any) -> None:
    try:
        env.close()
        env.close()
    except Exception as exc:
        raise EnvContractError(
            f"{type(env).__name__}.close() must be idempotent; the second call raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
