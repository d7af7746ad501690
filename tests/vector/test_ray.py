"""Ray backend on a local Ray cluster: steps exactly like Serial, extras travel, a dead
actor is reported (or replaced)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import numpy as np
import pytest

import fugu.vector
from fugu.core.errors import WorkerError

ray = pytest.importorskip("ray")

# Starting a Ray cluster and its actors takes ~30 s on a 2-core machine.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    tmp = tmp_path_factory.mktemp("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp),
        configure_logging=False,
    )
    yield
    ray.shutdown()


def test_round_trip_equals_serial_sync_and_async(cluster: None) -> None:
    env = fugu.vector.make("CartPole-v1", 4, backend="ray", num_workers=2, batch_size=2)
    local = fugu.vector.make("CartPole-v1", 4, backend="serial")
    try:
        rng = np.random.default_rng(0)
        np.testing.assert_array_equal(env.reset(seed=1)[0], local.reset(seed=1)[0])
        for _ in range(30):
            actions = rng.integers(0, 2, 4).astype(np.int32)
            for x, y in zip(env.step(actions)[:4], local.step(actions)[:4]):
                np.testing.assert_array_equal(x, y)
        env.async_reset(seed=2)
        local.reset(seed=2)
        for _ in range(20):
            actions = rng.integers(0, 2, 4).astype(np.int32)
            for lo in (0, 2):
                batch = env.recv()
                np.testing.assert_array_equal(batch.env_ids, [lo, lo + 1])
                np.testing.assert_array_equal(batch.observations, local.observations[lo : lo + 2])
                env.send(actions[lo : lo + 2])
            local.step(actions)
    finally:
        env.close()
        local.close()


def test_extra_fields_travel(cluster: None) -> None:
    env = fugu.vector.make("hazard-nav-v1", 2, backend="ray", num_workers=2, seed=3)
    local = fugu.vector.make("hazard-nav-v1", 2, backend="serial", seed=3)
    try:
        assert env.extra_fields == local.extra_fields
        env.reset()
        local.reset()
        rng = np.random.default_rng(1)
        for _ in range(20):
            actions = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
            env.step(actions)
            local.step(actions)
            np.testing.assert_array_equal(env.extras["costs"], local.extras["costs"])
    finally:
        env.close()
        local.close()


def test_dead_worker_is_reported_or_restarted(cluster: None) -> None:
    env = fugu.vector.make("CartPole-v1", 2, backend="ray", num_workers=2)
    env.reset(seed=0)
    os.kill(env.worker_pids()[1], signal.SIGKILL)
    with pytest.raises(WorkerError, match="worker 1 died"):
        for _ in range(50):  # the kill lands within a few steps
            env.step(np.zeros(2, np.int32))
    with pytest.raises(WorkerError):
        env.step(np.zeros(2, np.int32))
    env.close()

    env = fugu.vector.make(
        "CartPole-v1", 2, backend="ray", num_workers=2, remote_options={"on_failure": "restart"}
    )
    env.reset(seed=0)
    os.kill(env.worker_pids()[0], signal.SIGKILL)
    restarted = False
    for _ in range(50):
        *_, truncations, infos = env.step(np.zeros(2, np.int32))
        if env.num_restarts:
            restarted = True
            assert truncations[0]  # the replaced worker's episode was cut
            assert {"worker_restarts": 1} in infos
            break
    assert restarted
    env.step(np.zeros(2, np.int32))  # and it steps on
    env.close()
