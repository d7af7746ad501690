"""Steps per second of fugu's vectorization backends beside Gymnasium's, in the same run.

Every implementation steps the same Gymnasium env (``CartPole-v1`` by default) with random
actions drawn before timing starts, so the timed loop holds nothing but stepping. The
measurements are interleaved (repeat 1 of every implementation, then repeat 2, ...) and the
median is kept, so a noisy machine slows every implementation alike and the ratios hold.

``fugu bench vector`` (:mod:`fugu.cli.bench_vector`) and ``benchmarks/vector.py`` run it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fugu.core.errors import APIUsageError

__all__ = ["IMPLS", "VectorBenchConfig", "VectorBenchResult", "run_vector_benchmark"]

IMPLS = ("gymnasium-sync", "gymnasium-async", "fugu-serial", "fugu-mp-sync", "fugu-mp-async")
"""Implementations measured, in order. ``fugu-mp-async`` receives one worker per batch."""

_ACTION_ROWS = 1024  # pre-generated action rows, cycled
_CHUNK = 32  # calls between two clock reads


@dataclass(frozen=True)
class VectorBenchConfig:
    """What ``run_vector_benchmark`` measures.

    Attributes:
        env_id: A Gymnasium id with a ``Discrete`` or ``Box`` action space.
        num_envs: Env instances in every implementation.
        num_workers: Worker processes of the multiprocessing implementations (and Gymnasium's
            async one uses ``num_envs``: one process per env is how it works).
        seconds: Duration of one measurement (ignored when ``steps`` is set).
        steps: Env steps (rows stepped) per measurement instead of a duration.
        repeats: Measurements per implementation; the median is reported.
        seed: Seed of the envs and of the random actions.
        impls: Implementations to measure, a subset of :data:`IMPLS`.
        context: Start method of fugu's workers (``None``: fugu's default, spawn).
        pin_workers: Pinning of fugu's workers to CPUs (``None``: fugu's default, pin when
            they cover the usable CPUs evenly).
    """

    env_id: str = "CartPole-v1"
    num_envs: int = 8
    num_workers: int = 2
    seconds: float = 2.0
    steps: int | None = None
    repeats: int = 3
    seed: int = 0
    impls: tuple[str, ...] = IMPLS
    context: str | None = None
    pin_workers: bool | None = None


@dataclass
class VectorBenchResult:
    """The measurements of one implementation.

    Attributes:
        impl: Implementation name (see :data:`IMPLS`).
        num_envs: Env instances.
        num_workers: Worker processes (0 in process).
        batch_size: Env instances returned per call.
        sps: Median env steps per second over the repeats.
        repeats: Number of measurements.
        sps_runs: Every measurement, in order.
        ratio_vs_gymnasium_sync: ``sps`` over Gymnasium ``SyncVectorEnv``'s (``None`` when not
            measured).
        ratio_vs_gymnasium_async: ``sps`` over Gymnasium ``AsyncVectorEnv``'s.
    """

    impl: str
    num_envs: int
    num_workers: int
    batch_size: int
    sps: float = 0.0
    repeats: int = 0
    sps_runs: list[float] = field(default_factory=list)
    ratio_vs_gymnasium_sync: float | None = None
    ratio_vs_gymnasium_async: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class _Runner:
    """One implementation, built once: ``run(calls)`` steps it ``calls`` times."""

    def __init__(self, impl: str, config: VectorBenchConfig, actions: np.ndarray) -> None:
        self.impl = impl
        n, workers = config.num_envs, config.num_workers
        self.num_workers, self.batch_size = 0, n
        self._calls = 0
        if impl.startswith("gymnasium"):
            import gymnasium

            fns = [_GymMaker(config.env_id) for _ in range(n)]
            if impl == "gymnasium-sync":
                self.env: Any = gymnasium.vector.SyncVectorEnv(fns)
            else:
                self.env = gymnasium.vector.AsyncVectorEnv(fns)
                self.num_workers = n
            self.env.reset(seed=config.seed)
            self._actions = actions.astype(self.env.action_space.dtype)
            self.rows_per_call = n
            self.run = self._run_sync
            return
        from fugu.vector.backends import make

        if impl == "fugu-serial":
            self.env = make(config.env_id, n, backend="serial")
        else:
            self.num_workers = workers
            if impl == "fugu-mp-async":
                self.batch_size = n // workers
            self.env = make(
                config.env_id,
                n,
                backend="multiprocessing",
                num_workers=workers,
                batch_size=self.batch_size,
                context=config.context,
                pin_workers=config.pin_workers,
            )
        self._actions = actions.astype(self.env.actions.dtype)
        self.rows_per_call = int(self.env.agents_per_batch)
        if impl == "fugu-mp-async":
            self.env.async_reset(seed=config.seed)
            self._actions = np.ascontiguousarray(self._actions[:, : self.env.agents_per_batch])
            self.run = self._run_async
        else:
            self.env.reset(seed=config.seed)
            self.run = self._run_sync

    def _run_sync(self, calls: int) -> None:
        step, actions, i = self.env.step, self._actions, self._calls
        for k in range(i, i + calls):
            step(actions[k % _ACTION_ROWS])
        self._calls = i + calls

    def _run_async(self, calls: int) -> None:
        recv, send, actions, i = self.env.recv, self.env.send, self._actions, self._calls
        for k in range(i, i + calls):
            recv()
            send(actions[k % _ACTION_ROWS])
        self._calls = i + calls

    def measure(self, seconds: float, steps: int | None) -> float:
        """Env steps per second of one measurement (after a short warm-up)."""
        self.run(_CHUNK)  # warm-up
        rows = self.rows_per_call
        clock = time.perf_counter
        start = clock()
        if steps is not None:
            calls = max(1, -(-steps // rows))
            self.run(calls)
        else:
            calls = 0
            while clock() - start < seconds:
                self.run(_CHUNK)
                calls += _CHUNK
        return calls * rows / (clock() - start)

    def close(self) -> None:
        self.env.close()


@dataclass(frozen=True)
class _GymMaker:
    """Picklable ``gymnasium.make(env_id)`` (for AsyncVectorEnv workers)."""

    env_id: str

    def __call__(self) -> Any:
        import gymnasium

        return gymnasium.make(self.env_id)


def _random_actions(config: VectorBenchConfig) -> np.ndarray:
    import gymnasium

    space = gymnasium.make(config.env_id).action_space
    rng = np.random.default_rng(config.seed)
    shape = (_ACTION_ROWS, config.num_envs)
    if isinstance(space, gymnasium.spaces.Discrete):
        return rng.integers(0, int(space.n), shape) + int(space.start)
    if isinstance(space, gymnasium.spaces.Box):
        low, high = np.broadcast_arrays(space.low, space.high)
        draws = rng.uniform(0.0, 1.0, (*shape, *space.shape))
        return (low + draws * (high - low)).astype(np.float32)
    raise APIUsageError(f"the vector benchmark needs a Discrete or Box action space, got {space}")


def run_vector_benchmark(
    config: VectorBenchConfig,
    on_progress: Callable[[str, int, VectorBenchResult | None], None] | None = None,
) -> list[VectorBenchResult]:
    """Measure every implementation of ``config.impls``, interleaving the repeats.

    Args:
        config: What to measure.
        on_progress: Called as ``on_progress(impl, repeat, None)`` before each measurement
            and ``on_progress(impl, repeat, result)`` after it (``result.sps_runs`` grows).

    Returns:
        One result per implementation, with the ratios to Gymnasium's filled in.

    Example:
        >>> config = VectorBenchConfig(num_envs=2, num_workers=1, steps=64, repeats=1,
        ...                            impls=("gymnasium-sync", "fugu-serial"))
        >>> [r.impl for r in run_vector_benchmark(config)]
        ['gymnasium-sync', 'fugu-serial']
    """
    unknown = set(config.impls) - set(IMPLS)
    if unknown:
        raise APIUsageError(f"unknown implementations {sorted(unknown)}; choose from {IMPLS}")
    if config.num_envs % max(config.num_workers, 1):
        raise APIUsageError(
            f"num_workers ({config.num_workers}) must divide num_envs ({config.num_envs})"
        )
    if config.repeats < 1:
        raise APIUsageError(f"repeats must be >= 1, got {config.repeats}")
    actions = _random_actions(config)
    runners: dict[str, _Runner] = {}
    results: dict[str, VectorBenchResult] = {}
    try:
        for impl in config.impls:
            runners[impl] = runner = _Runner(impl, config, actions)
            results[impl] = VectorBenchResult(
                impl, config.num_envs, runner.num_workers, runner.batch_size
            )
        for repeat in range(config.repeats):
            for impl, runner in runners.items():
                if on_progress is not None:
                    on_progress(impl, repeat, None)
                result = results[impl]
                result.sps_runs.append(runner.measure(config.seconds, config.steps))
                result.repeats = len(result.sps_runs)
                result.sps = float(statistics.median(result.sps_runs))
                if on_progress is not None:
                    on_progress(impl, repeat, result)
    finally:
        for runner in runners.values():
            runner.close()
    sync, async_ = results.get("gymnasium-sync"), results.get("gymnasium-async")
    for result in results.values():
        if sync is not None and sync.sps > 0:
            result.ratio_vs_gymnasium_sync = result.sps / sync.sps
        if async_ is not None and async_.sps > 0:
            result.ratio_vs_gymnasium_async = result.sps / async_.sps
    return list(results.values())
