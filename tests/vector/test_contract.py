"""Contract tests every vectorization backend passes: shapes, dtypes, seeding, autoreset, masks."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.core.vec import VecEnv
from fugu.vector import EnvFactory, Multiprocessing, Serial
from fugu.vector.remote import Remote
from fugu.vector.serve import EnvServer

BACKENDS = [
    "serial",
    "fork",
    "remote",
    pytest.param(
        "ray",
        marks=[
            pytest.mark.slow,
            pytest.mark.skipif(
                importlib.util.find_spec("ray") is None, reason="ray is not installed"
            ),
        ],
    ),
]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local 2-CPU Ray cluster for every ray case of this module (it takes seconds)."""
    import ray

    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    # the actors unpickle factories of ``_vector_envs``: put its directory on their path
    path = [str(Path(__file__).parent), *filter(None, [saved["PYTHONPATH"]])]
    os.environ["PYTHONPATH"] = os.pathsep.join(path)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend by name; ``"ray"`` brings up the module's Ray cluster first."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)


class _ServedRemote(Remote):
    """A Remote client of its own in-process server, stopped with it."""

    def __init__(self, factory: Any, num_envs: int, **kwargs: Any) -> None:
        self.server = EnvServer(factory, num_envs, make_kwargs={"backend": "serial"})
        self.server.start()
        super().__init__(self.server.address, None, num_envs, **kwargs)

    def _close(self) -> None:
        super()._close()
        self.server.stop()


def build(backend: str, factory: Any, num_envs: int, **kwargs: Any) -> Any:
    if backend == "remote":
        kwargs.pop("num_workers", None)
        return _ServedRemote(factory, num_envs, **kwargs)
    if backend == "serial":
        kwargs.pop("num_workers", None)
        return Serial(factory, num_envs, **kwargs)
    kwargs.setdefault("num_workers", 2)
    if backend == "ray":
        from fugu.vector.ray import RayVecEnv

        # a quarter CPU per actor: the tests hold two vec envs (4 actors) on 2 CPUs
        return RayVecEnv(factory, num_envs, num_cpus=0.25, **kwargs)
    return Multiprocessing(factory, num_envs, context=backend, **kwargs)


def rollout(env: Any, steps: int, seed: int = 0) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = [(obs.copy(),)]
    for _ in range(steps):
        actions = rng.integers(0, 2, env.actions.shape).astype(np.int32)
        obs, rewards, terminals, truncations, _ = env.step(actions)
        out.append(
            (obs.copy(), rewards.copy(), terminals.copy(), truncations.copy(),
             env.final_observations.copy(), env.masks.copy())
        )  # fmt: skip
    return out


def test_shapes_dtypes_and_protocol(backend: str, envs_module: ModuleType) -> None:
    env = build(backend, EnvFactory(envs_module.Counter, {"agents": 2}), 4)
    try:
        assert isinstance(env, VecEnv)
        assert env.num_agents == env.num_envs == 8 and env.num_instances == 4
        obs, infos = env.reset(seed=3)
        assert obs.shape == (8, 3) and obs.dtype == np.float32 and infos == []
        assert env.actions.shape == (8,) and env.actions.dtype == np.int32
        obs, rewards, terminals, truncations, _ = env.step(np.ones(8, dtype=np.int32))
        assert rewards.dtype == np.float32 and rewards.shape == (8,)
        assert terminals.dtype == np.bool_ and truncations.dtype == np.bool_
        assert env.masks.dtype == np.bool_ and env.final_observations.shape == (8, 3)
        # row i is seeded with seed + i: instance k starts at row 2k
        np.testing.assert_array_equal(obs[:, 2], np.repeat([3, 5, 7, 9], 2))
        with pytest.raises(APIUsageError, match="shape"):
            env.step(np.ones(3, dtype=np.int32))
    finally:
        env.close()


def test_autoreset_final_observations_masks_infos(backend: str, envs_module: ModuleType) -> None:
    env = build(backend, EnvFactory(envs_module.Counter, {"agents": 2, "horizon": 3}), 2)
    try:
        env.reset(seed=10)
        actions = np.full(4, 2, dtype=np.int32)
        _, _, terminals, _, infos = env.step(actions)
        assert not terminals.any() and infos == []
        np.testing.assert_array_equal(env.masks, [True, False, True, False])
        env.step(actions)
        np.testing.assert_array_equal(env.masks, [True, True, True, True])
        obs, rewards, terminals, _, infos = env.step(actions)
        assert terminals.all() and rewards.tolist() == [2.0] * 4
        # the step that ended the episode already holds the next episode's first observation
        np.testing.assert_array_equal(obs[:, 0], [10, 10, 12, 12])
        np.testing.assert_array_equal(env.final_observations[:, 0], [16, 16, 18, 18])
        assert len(infos) == 2 and infos[0]["episode_length"] == 3.0
    finally:
        env.close()


def test_seeded_determinism_identical_across_backends(envs_module: ModuleType) -> None:
    factory = EnvFactory(envs_module.GymCartPole)
    runs = []
    for backend, kwargs in [("serial", {}), ("fork", {}), ("fork", {"spin_us": 0})]:
        env = build(backend, factory, 4, **kwargs)
        try:
            runs.append(rollout(env, 40, seed=7))
        finally:
            env.close()
    for serial_step, *others in zip(*runs):
        for other in others:
            for a, b in zip(serial_step, other):
                np.testing.assert_array_equal(a, b)
    assert any(step[2].any() for step in runs[0][1:])  # some episode ended


def test_async_batches_round_robin_match_sync(backend: str, envs_module: ModuleType) -> None:
    factory = EnvFactory(envs_module.GymCartPole)
    sync = build(backend, factory, 4)
    batched = build(backend, factory, 4, batch_size=2)
    try:
        assert batched.agents_per_batch == 2 and sync.agents_per_batch == 4
        actions = np.random.default_rng(0).integers(0, 2, (30, 4)).astype(np.int32)
        expected = [(sync.reset(seed=1)[0].copy(), np.zeros(4, np.float32), np.zeros(4, bool))]
        for step_actions in actions:
            obs, rewards, terminals, *_ = sync.step(step_actions)
            expected.append((obs.copy(), rewards.copy(), terminals.copy()))
        batched.async_reset(seed=1)
        for t, (obs, rewards, terminals) in enumerate(expected):
            for batch in range(2):
                rows = slice(2 * batch, 2 * batch + 2)
                got = batched.recv()
                assert got.env_ids.tolist() == list(range(4))[rows]
                np.testing.assert_array_equal(got.observations, obs[rows])
                np.testing.assert_array_equal(got.rewards, rewards[rows])
                np.testing.assert_array_equal(got.terminals, terminals[rows])
                assert np.shares_memory(got.observations, batched.observations)
                if t == len(actions):
                    break
                batched.send(actions[t, rows])
    finally:
        sync.close()
        batched.close()


def test_call_order_errors(backend: str, envs_module: ModuleType) -> None:
    env = build(backend, EnvFactory(envs_module.Counter), 2, batch_size=1)
    actions = np.zeros(2, dtype=np.int32)
    with pytest.raises(APIUsageError, match="before reset"):
        env.step(np.zeros(4, dtype=np.int32))
    with pytest.raises(APIUsageError, match="before async_reset"):
        env.send(actions)
    with pytest.raises(APIUsageError, match="async_reset"):
        env.recv()
    env.async_reset(seed=0)
    with pytest.raises(APIUsageError, match="twice without recv"):
        env.send(actions)
    env.recv()
    with pytest.raises(APIUsageError, match="twice without send"):
        env.recv()
    with pytest.raises(APIUsageError, match="asynchronously"):
        env.step(np.zeros(4, dtype=np.int32))
    env.send(actions)
    obs, _ = env.reset(seed=0)  # a synchronous reset drains the pending batches
    assert obs.shape == (4, 3)
    env.step(np.zeros(4, dtype=np.int32))
    env.close()
    env.close()  # idempotent
    for call, args in [("step", (actions,)), ("reset", ()), ("async_reset", ()), ("recv", ()),
                       ("send", (actions,))]:  # fmt: skip
        with pytest.raises(APIUsageError, match="after close"):
            getattr(env, call)(*args)


def test_default_seed_and_bad_arguments(envs_module: ModuleType) -> None:
    factory = EnvFactory(envs_module.Counter, {"agents": 1})
    env = Serial(factory, 2, seed=5)
    assert env.reset()[0][:, 2].tolist() == [5, 6]
    assert env.reset()[0][:, 2].tolist() == [0, 0]  # the default seed is used once
    with pytest.raises(APIUsageError, match="seed must be an int"):
        env.reset(seed="x")  # type: ignore[arg-type]
    assert env.reset(seed=[4, 2])[0][:, 2].tolist() == [4, 2]
    env.close()
    with pytest.raises(APIUsageError, match="divide"):
        Serial(factory, 3, batch_size=2)
    with pytest.raises(APIUsageError, match="num_envs must be"):
        Serial(factory, 0)
    with pytest.raises(APIUsageError, match="divide num_envs"):
        Multiprocessing(factory, 3, num_workers=2, context="fork")
    with pytest.raises(APIUsageError, match="multiple of"):
        Multiprocessing(factory, 4, num_workers=2, batch_size=1, context="fork")
    with pytest.raises(APIUsageError, match="context must be one of"):
        Multiprocessing(factory, 2, num_workers=1, context="threads")
    with pytest.raises(APIUsageError, match="spin_us"):
        Multiprocessing(factory, 2, num_workers=1, context="fork", spin_us=-1)


def test_per_row_seed_lists(backend: str, envs_module: ModuleType) -> None:
    env = build(backend, EnvFactory(envs_module.Counter, {"agents": 1}), 4)
    try:
        assert env.reset(seed=[9, 1, 7, 3])[0][:, 2].tolist() == [9, 1, 7, 3]
        env.async_reset(seed=np.array([2, 4, 6, 8]))
        assert env.recv().observations[:, 2].tolist() == [2, 4, 6, 8]
        with pytest.raises(APIUsageError, match="one seed per row"):
            env.reset(seed=[1, 2])
    finally:
        env.close()
