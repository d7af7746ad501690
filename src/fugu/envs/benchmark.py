"""Env speed measurements: fugu's native envs beside Gymnasium's vector CartPole and EnvPool.

Every measurement pre-generates its actions, copies each step's actions into the env's action
buffer (no allocation in the timed loop) and reports the median of a few timed repeats as
steps per second (rows stepped per second). Records are plain dicts, one per measurement, that
``fugu bench env`` and ``benchmarks/envs.py`` print as JSON lines.

Example:
    >>> record = measure_env("probe-constant-v1", num_envs=8, seconds=0.01, repeats=1)
    >>> sorted(record)
    ['env', 'impl', 'num_envs', 'rows', 'sps', 'threads']
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from fugu.core.errors import missing_dependency
from fugu.core.registry import default_registry, make, registered_ids

__all__ = [
    "DEFAULT_SIZES",
    "format_record",
    "measure_env",
    "measure_envpool",
    "measure_gymnasium_vector",
    "measure_start",
    "run_suite",
]

DEFAULT_SIZES = (1, 8, 64, 1024, 4096)
_NUM_ACTION_BATCHES = 64


def native_ids() -> list[str]:
    """The registered ids of native (vectorized, ``num_envs``-row) envs, the ones measured by
    default; the Gymnasium-built ids (``safe-*-velocity``) are one-row envs."""
    import inspect

    ids = []
    for env_id in registered_ids():
        try:
            parameters = inspect.signature(default_registry.spec(env_id).load()).parameters
        except (TypeError, ValueError):
            continue
        if "num_envs" in parameters:
            ids.append(env_id)
    return ids


def _time(step: Callable[[int], None], rows: int, seconds: float, repeats: int) -> float:
    """Median steps/s of ``step(k)`` over ``repeats`` runs of at least ``seconds`` each."""
    step(0)  # warm up (compilation, first-touch)
    rates = []
    for _ in range(repeats):
        iterations = 0
        start = time.perf_counter()
        elapsed = 0.0
        while elapsed < seconds:
            for k in range(16):
                step(k)
            iterations += 16
            elapsed = time.perf_counter() - start
        rates.append(iterations * rows / elapsed)
    return float(np.median(rates))


def _random_actions(space: Any, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if hasattr(space, "n"):
        return rng.integers(0, int(space.n), (_NUM_ACTION_BATCHES, rows), dtype=np.int64)
    if hasattr(space, "nvec"):
        nvec = np.asarray(space.nvec).reshape(-1)
        return rng.integers(0, nvec, (_NUM_ACTION_BATCHES, rows, nvec.size), dtype=np.int64)
    low = np.broadcast_to(space.low, space.shape)
    high = np.broadcast_to(space.high, space.shape)
    return rng.uniform(low, high, (_NUM_ACTION_BATCHES, rows, *space.shape))


def measure_env(
    env_id: str,
    num_envs: int,
    threads: int = 1,
    *,
    seconds: float = 0.5,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Steps per second of a fugu env with random actions.

    Args:
        env_id: A registered fugu id (``fugu.registered_ids()``).
        num_envs: Env copies; ``rows`` in the record counts agents.
        threads: Stepping threads.
        seconds: Minimum duration of each timed repeat.
        repeats: Timed repeats; the median is reported.
        seed: Seed of the env and of the actions.

    Returns:
        ``{"impl": "fugu", "env", "num_envs", "threads", "rows", "sps"}``.
    """
    env = make(env_id, num_envs=num_envs, threads=threads, seed=seed)
    try:
        env.reset()
        rows = env.num_agents
        actions = _random_actions(env.single_action_space, rows, seed).astype(env.actions.dtype)
        buffer = env.actions

        def step(k: int) -> None:
            np.copyto(buffer, actions[k & (_NUM_ACTION_BATCHES - 1)])
            env.step(buffer)

        sps = _time(step, rows, seconds, repeats)
    finally:
        env.close()
    return {
        "impl": "fugu",
        "env": env_id,
        "num_envs": num_envs,
        "threads": threads,
        "rows": rows,
        "sps": sps,
    }


def measure_gymnasium_vector(
    num_envs: int, *, seconds: float = 0.5, repeats: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Steps per second of Gymnasium's own vectorized CartPole (``vector_entry_point``)."""
    import gymnasium

    env = gymnasium.make_vec(
        "CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point"
    )
    try:
        env.reset(seed=seed)
        actions = _random_actions(env.single_action_space, num_envs, seed)

        def step(k: int) -> None:
            env.step(actions[k & (_NUM_ACTION_BATCHES - 1)])

        sps = _time(step, num_envs, seconds, repeats)
    finally:
        env.close()
    return {
        "impl": "gymnasium_vector",
        "env": "CartPole-v1",
        "num_envs": num_envs,
        "threads": 1,
        "sps": sps,
    }


def measure_envpool(
    num_envs: int, *, seconds: float = 0.5, repeats: int = 3, seed: int = 0
) -> dict[str, Any]:
    """Steps per second of EnvPool's CartPole-v1 (synchronous, its default thread pool)."""
    try:
        import envpool
    except ImportError as error:  # pragma: no cover - envpool is in the dev extras
        raise missing_dependency("envpool", "envpool") from error
    env = None
    with warnings.catch_warnings():  # EnvPool builds float32 boxes from float64 bounds
        warnings.simplefilter("ignore", UserWarning)
        try:
            env = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=num_envs, seed=seed)
            env.reset()
            actions = _random_actions(env.action_space, num_envs, seed).astype(np.int32)

            def step(k: int) -> None:
                env.step(actions[k & (_NUM_ACTION_BATCHES - 1)])

            sps = _time(step, num_envs, seconds, repeats)
            threads = int(env.config.get("num_threads", 0))
        finally:
            if env is not None:
                env.close()
    return {
        "impl": "envpool",
        "env": "CartPole-v1",
        "num_envs": num_envs,
        "threads": threads,
        "sps": sps,
    }


_START_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import fugu, numba
print(json.dumps({"env": "import", "seconds": time.perf_counter() - start}))
for env_id in sys.argv[1:]:
    begin = time.perf_counter()
    env = fugu.make(env_id, num_envs=8)
    env.reset(seed=0)
    env.step(env.actions)
    env.close()
    print(json.dumps({"env": env_id, "seconds": time.perf_counter() - begin}))
print(json.dumps({"env": "all", "seconds": time.perf_counter() - start}))
"""


def measure_start(env_ids: Sequence[str], cache_dir: str, *, impl: str) -> list[dict[str, Any]]:
    """Seconds a fresh interpreter takes to build, reset and step each env once.

    One subprocess imports fugu (record ``env="import"``), then builds the envs one after the
    other (one record each, compilation or cache loading included) and reports the whole run
    (``env="all"``, interpreter start excluded).

    Args:
        env_ids: Registered fugu ids.
        cache_dir: ``NUMBA_CACHE_DIR`` of the subprocess: an empty folder measures a cold start
            (every kernel compiled), a folder a previous run filled measures a warm start.
        impl: ``"cold_start"`` or ``"warm_start"``, copied into the records.

    Returns:
        ``[{"impl": impl, "env": ..., "seconds": ...}, ...]``.
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    done = subprocess.run(
        [sys.executable, "-c", _START_SCRIPT, *env_ids],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [{"impl": impl, **json.loads(line)} for line in done.stdout.splitlines()]


def run_suite(
    env_ids: Sequence[str] | None = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    peers: bool = True,
    big: int | None = 65536,
    starts: bool = True,
    seconds: float = 0.5,
    repeats: int = 3,
) -> Iterator[dict[str, Any]]:
    """Every measurement of ``benchmarks/envs.py``, yielded as it completes.

    Args:
        env_ids: Fugu ids to measure (every registered one by default).
        sizes: ``num_envs`` values to measure each env at (one thread).
        peers: Also measure Gymnasium's vector CartPole and EnvPool beside ``cartpole-v1``
            (adding ``ratio_vs_gymnasium_vector`` and ``ratio_vs_envpool`` to its records).
        big: If set, ``cartpole-v1`` at this many rows with 1 and 2 threads
            (``ratio_vs_one_thread`` on the 2-thread record).
        starts: Also measure cold and warm start of every env in subprocesses
            (:func:`measure_start`).
        seconds: Minimum duration of each timed repeat.
        repeats: Timed repeats per measurement (median reported).
    """
    ids = list(env_ids) if env_ids is not None else native_ids()
    kwargs: dict[str, Any] = {"seconds": seconds, "repeats": repeats}
    for env_id in ids:
        for n in sizes:
            record = measure_env(env_id, n, **kwargs)
            if peers and env_id == "cartpole-v1":
                gym_record = measure_gymnasium_vector(n, **kwargs)
                yield gym_record
                record["ratio_vs_gymnasium_vector"] = record["sps"] / gym_record["sps"]
                try:
                    pool_record = measure_envpool(n, **kwargs)
                except ImportError:  # pragma: no cover - envpool is in the dev extras
                    pass
                else:
                    yield pool_record
                    record["ratio_vs_envpool"] = record["sps"] / pool_record["sps"]
            yield record
    if big and "cartpole-v1" in ids:
        one = measure_env("cartpole-v1", big, 1, **kwargs)
        yield one
        two = measure_env("cartpole-v1", big, 2, **kwargs)
        two["ratio_vs_one_thread"] = two["sps"] / one["sps"]
        yield two
    if starts:
        with tempfile.TemporaryDirectory(prefix="fugu-numba-") as cache:
            yield from measure_start(ids, cache, impl="cold_start")
            yield from measure_start(ids, cache, impl="warm_start")


def format_record(record: dict[str, Any]) -> str:
    """One JSON line, floats rounded for reading."""
    return json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
