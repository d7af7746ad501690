"""Multiprocessing internals seen from outside: CPU pinning and how infos travel back."""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.vector import EnvFactory, Multiprocessing, multiproc
from fugu.vector.multiproc import worker_cpus

needs_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only"
)


@needs_affinity
def test_worker_cpus_spread_round_robin_over_usable_cpus() -> None:
    usable = sorted(os.sched_getaffinity(0))
    n = len(usable)
    assert worker_cpus(2 * n, pin=True) == usable * 2
    assert worker_cpus(n) == usable  # auto: the workers cover the CPUs evenly
    assert worker_cpus(n + 1, pin=False) == [None] * (n + 1)
    if n > 1:
        assert worker_cpus(n + 1) == [None] * (n + 1)  # auto: uneven, so no pinning
        assert worker_cpus(n + 1, pin=True) == [*usable, usable[0]]


@needs_affinity
def test_default_worker_count_follows_the_usable_cpus(
    monkeypatch: pytest.MonkeyPatch, envs_module: ModuleType
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # as under `taskset -c 0`
    env = Multiprocessing(EnvFactory(envs_module.Counter, {"agents": 1}), 4, context="fork")
    try:
        assert env.num_workers == 1 and env.worker_cpus == [0]
    finally:
        env.close()


def test_pin_true_without_affinity_support_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    with pytest.raises(APIUsageError, match="pin_workers=None or False"):
        worker_cpus(2, pin=True)
    assert worker_cpus(2) == [None, None]


@needs_affinity
@pytest.mark.parametrize("pin", [True, False])
def test_workers_pin_themselves_when_asked(pin: bool, envs_module: ModuleType) -> None:
    parent = os.sched_getaffinity(0)
    env = Multiprocessing(
        EnvFactory(envs_module.Counter, {"agents": 1}), 4, num_workers=2, context="fork",
        pin_workers=pin,
    )  # fmt: skip
    try:
        env.reset(seed=0)
        for process, cpu in zip(env.processes, env.worker_cpus):
            expected = {cpu} if pin else parent
            assert os.sched_getaffinity(process.pid) == expected
        assert (None in env.worker_cpus) is not pin
    finally:
        env.close()
    assert os.sched_getaffinity(0) == parent  # the main process is never pinned


@pytest.mark.parametrize("info_bytes", [0, 100, multiproc._INFO_AREA + 1])
def test_infos_of_any_size_arrive_whole_and_in_order(
    info_bytes: int, envs_module: ModuleType
) -> None:
    factory = EnvFactory(envs_module.Counter, {"agents": 1, "horizon": 2, "info_bytes": info_bytes})
    env = Multiprocessing(factory, 4, num_workers=2, batch_size=2, context="fork")
    try:
        env.async_reset(seed=0)
        actions = np.ones(2, dtype=np.int32)
        seen = []
        for _ in range(14):  # the reset's 2 batches, then 6 steps of each: 3 ends per row
            batch = env.recv()
            seen.append((batch.env_ids.tolist(), batch.infos))
            env.send(actions)
        ends = [(ids, infos) for ids, infos in seen if infos]
        assert len(ends) == 6 and all(len(infos) == 2 for _, infos in ends)
        for _, infos in ends:
            for info in infos:
                assert info["episode_length"] == 2.0
                payload = info.get("payload", b"")
                assert len(payload) == info_bytes
                assert payload == payload[:1] * info_bytes  # not torn by a later write
    finally:
        env.close()
