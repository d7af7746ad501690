"""Multiprocessing robustness: worker errors, killed workers, clean close, spawn."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from fugu.core.errors import APIUsageError, EnvContractError, WorkerError
from fugu.vector import EnvFactory, Multiprocessing, Serial


def shm_entries(pids: list[int] | None = None) -> set[str]:
    """Entries of /dev/shm that this process or ``pids`` could have left behind.

    Other programs on the machine create and remove their own entries concurrently, so only
    names carrying one of our pids (multiprocessing names its files ``pym-<pid>-...``) count.
    """
    shm = Path("/dev/shm")
    names = {p.name for p in shm.iterdir()} if shm.is_dir() else set()
    ours = [str(pid) for pid in [os.getpid(), *(pids or [])]]
    return {name for name in names if any(pid in name for pid in ours)}


def fugu_children() -> list[str]:
    """Names of live fugu worker processes (other tests' helpers may still be shutting down)."""
    return [
        f"{p.name} (pid {p.pid})"
        for p in multiprocessing.active_children()
        if p.name.startswith("fugu-vector-worker")
    ]


def assert_clean(env: Multiprocessing, pids: list[int], before: set[str]) -> None:
    assert env.processes == []
    for pid in pids:
        assert pid not in {p.pid for p in multiprocessing.active_children()}
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: the pid no longer exists
    assert shm_entries(pids) <= before


@pytest.mark.timeout(60)
def test_worker_exception_is_reraised_with_traceback(envs_module: ModuleType) -> None:
    before = shm_entries()
    factory = EnvFactory(envs_module.Counter, {"crash_at": 2})
    env = Multiprocessing(factory, 4, num_workers=2, context="fork")
    pids = [p.pid for p in env.processes]
    env.reset(seed=0)
    env.step(np.zeros(8, dtype=np.int32))
    with pytest.raises(WorkerError, match=r"(?s)worker 0 .*raised.*ValueError: boom at step 2"):
        env.step(np.zeros(8, dtype=np.int32))
    with pytest.raises(WorkerError, match="boom"):  # the env stays failed
        env.step(np.zeros(8, dtype=np.int32))
    env.close()
    env.close()
    assert_clean(env, pids, before)


@pytest.mark.timeout(60)
def test_worker_exception_in_async_batch(envs_module: ModuleType) -> None:
    factory = EnvFactory(envs_module.Counter, {"crash_at": 1})
    env = Multiprocessing(factory, 2, num_workers=2, batch_size=1, context="fork")
    env.async_reset(seed=0)
    env.recv()
    env.send(np.zeros(2, dtype=np.int32))
    env.recv()  # worker 1's reset
    env.send(np.zeros(2, dtype=np.int32))
    with pytest.raises(WorkerError, match="boom at step 1"):
        env.recv()
    with pytest.raises(WorkerError):
        env.send(np.zeros(2, dtype=np.int32))
    env.close()


@pytest.mark.timeout(60)
def test_killed_worker_is_detected_without_hanging(envs_module: ModuleType) -> None:
    before = shm_entries()
    env = Multiprocessing(EnvFactory(envs_module.Counter), 4, num_workers=2, context="fork")
    pids = [p.pid for p in env.processes]
    env.reset(seed=0)
    os.kill(pids[1], signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(WorkerError, match="killed by signal 9"):
        for _ in range(1000):  # the first step may race with the kill
            env.step(np.zeros(8, dtype=np.int32))
    assert time.monotonic() - start < 20
    env.close()
    assert_clean(env, pids, before)


@pytest.mark.timeout(60)
def test_killed_worker_during_async_recv(envs_module: ModuleType) -> None:
    env = Multiprocessing(
        EnvFactory(envs_module.Counter), 2, num_workers=2, batch_size=1, context="fork"
    )
    try:
        env.async_reset(seed=0)
        env.recv()
        os.kill(env.processes[0].pid, signal.SIGKILL)
        env.processes[0].join(5)
        # noticed when sending to the dead worker (if it was asleep) or when receiving
        with pytest.raises(WorkerError, match=r"worker 0 .* killed by signal 9"):
            env.send(np.zeros(2, dtype=np.int32))
            env.recv()  # worker 1 answers its reset
            env.send(np.zeros(2, dtype=np.int32))
            env.recv()
        with pytest.raises(WorkerError, match="worker 0"):  # and the env stays failed
            env.recv()
    finally:
        env.close()
    assert not fugu_children()


@pytest.mark.timeout(60)
def test_env_construction_error_raises_and_cleans_up(envs_module: ModuleType) -> None:
    before = shm_entries()
    factory = EnvFactory(envs_module.Counter, {"horizon": 3})
    broken = EnvFactory(_make_counter_or_fail, {"module": envs_module.__name__})
    with pytest.raises(WorkerError, match="RuntimeError: cannot build in a worker"):
        Multiprocessing(broken, 2, num_workers=2, context="fork")
    assert not fugu_children()
    assert shm_entries() <= before
    with pytest.raises(EnvContractError, match="ignored the buffers"):
        Serial(EnvFactory(envs_module.Ignorant), 2)
    Serial(factory, 1).close()


def _make_counter_or_fail(module: str, buffers: object = None) -> object:
    import importlib

    if buffers is not None:
        raise RuntimeError("cannot build in a worker")
    return importlib.import_module(module).Counter()


@pytest.mark.timeout(120)
def test_spawn_matches_serial_and_cleans_up(envs_module: ModuleType) -> None:
    before = shm_entries()
    factory = EnvFactory(envs_module.GymCartPole)
    env = Multiprocessing(factory, 2, num_workers=1, context="spawn")
    assert env.context == "spawn"
    serial = Serial(factory, 2)
    try:
        actions = np.random.default_rng(1).integers(0, 2, (25, 2)).astype(np.int32)
        np.testing.assert_array_equal(env.reset(seed=4)[0], serial.reset(seed=4)[0])
        for step_actions in actions:
            for got, want in zip(env.step(step_actions)[:4], serial.step(step_actions)[:4]):
                np.testing.assert_array_equal(got, want)
        pids = [p.pid for p in env.processes]
    finally:
        env.close()
        serial.close()
    assert_clean(env, pids, before)


@pytest.mark.timeout(60)
def test_unpicklable_factory_with_spawn_says_what_to_do(envs_module: ModuleType) -> None:
    counter = envs_module.Counter
    factory = EnvFactory(lambda buffers=None: counter(buffers=buffers))
    with pytest.raises(APIUsageError, match="module-level function"):
        Multiprocessing(factory, 1, num_workers=1, context="spawn")
    assert not fugu_children()


@pytest.mark.timeout(60)
def test_portable_signalling_without_poll(
    envs_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The non-POSIX path (multiprocessing.connection.wait), forced here, behaves the same."""
    from fugu.vector import multiproc

    monkeypatch.setattr(multiproc, "_HAVE_POLL", False)  # fork: the workers inherit it
    factory = EnvFactory(envs_module.Counter)
    env = Multiprocessing(factory, 2, num_workers=2, context="fork", spin_us=0)
    serial = Serial(factory, 2)
    actions = np.ones(4, dtype=np.int32)
    np.testing.assert_array_equal(env.reset(seed=1)[0], serial.reset(seed=1)[0])
    for _ in range(5):
        np.testing.assert_array_equal(env.step(actions)[0], serial.step(actions)[0])
    os.kill(env.processes[0].pid, signal.SIGKILL)
    with pytest.raises(WorkerError, match="killed by signal"):
        for _ in range(1000):
            env.step(actions)
    env.close()
    serial.close()
    assert not fugu_children()
