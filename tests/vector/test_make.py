"""fugu.vector.make: backend choice, native passthrough, factories and errors."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import numpy as np
import pytest

import fugu.vector
from fugu.core.env import PufferEnv
from fugu.core.errors import APIUsageError
from fugu.vector import EnvFactory, Multiprocessing, Serial


def test_native_env_is_passed_through() -> None:
    env = fugu.vector.make("cartpole-v1", num_envs=8, seed=3)
    assert isinstance(env, PufferEnv) and not isinstance(env, Serial)
    assert env.num_agents == 8
    obs, _ = env.reset()
    assert obs.shape == (8, 4)
    env.close()
    env = fugu.vector.make("cartpole-v1", num_envs=4, backend="native", num_workers=2)
    assert env.num_agents == 4 and env.threads == 2
    env.close()


def test_fugu_id_can_be_vectorized_by_the_generic_backends() -> None:
    env = fugu.vector.make("cartpole-v1", num_envs=3, backend="serial", seed=0)
    assert isinstance(env, Serial) and env.num_agents == 3
    obs, _ = env.reset()
    native = fugu.vector.make("cartpole-v1", num_envs=1, seed=0)
    env.step(np.zeros(3, dtype=np.int32))
    env.close()
    native.close()
    assert obs.shape == (3, 4)


def test_callable_and_backend_choice(envs_module: ModuleType) -> None:
    serial = fugu.vector.make(envs_module.Counter, 2, env_kwargs={"agents": 3})
    assert isinstance(serial, Serial) and serial.num_agents == 6
    serial.close()
    mp = fugu.vector.make(envs_module.Counter, 2, num_workers=2, context="fork", batch_size=1)
    assert isinstance(mp, Multiprocessing) and mp.agents_per_batch == 2
    mp.async_reset(seed=0)
    batch = mp.recv()
    assert batch.env_ids.tolist() == [0, 1]
    mp.close()


def test_make_errors(envs_module: ModuleType) -> None:
    with pytest.raises(APIUsageError, match="backend must be one of"):
        fugu.vector.make("cartpole-v1", backend="threads")
    with pytest.raises(APIUsageError, match="not a native env"):
        fugu.vector.make(envs_module.Counter, 2, backend="native")
    with pytest.raises(APIUsageError, match="runs in one process"):
        fugu.vector.make(envs_module.Counter, 2, backend="serial", num_workers=2)
    with pytest.raises(APIUsageError, match="does not take 'batch_size'"):
        fugu.vector.make(envs_module.NativeCounter, 2, batch_size=1)
    native = fugu.vector.make(envs_module.NativeCounter, 5)
    assert isinstance(native, envs_module.NativeCounter) and native.num_agents == 5
    with pytest.raises(APIUsageError, match="env must be an env id or a callable"):
        fugu.vector.make(3)  # type: ignore[arg-type]


def test_factory_accepts_and_rejects_non_envs() -> None:
    assert EnvFactory("cartpole-v1").accepts("num_envs")
    assert not EnvFactory("CartPole-v1").accepts("num_envs")  # Gymnasium ids are not native
    assert not EnvFactory(len).accepts("buffers")
    with pytest.raises(Exception, match="not a fugu PufferEnv"):
        EnvFactory(dict)()


@pytest.mark.skipif(
    importlib.util.find_spec("fugu.core.emulation") is None, reason="needs fugu.core.emulation"
)
def test_gymnasium_id_through_emulation() -> None:
    env = fugu.vector.make("CartPole-v1", num_envs=2, backend="serial", seed=0)
    obs, _ = env.reset()
    assert obs.shape == (2, 4)
    env.step(np.zeros(2, dtype=np.int32))
    env.close()


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
def test_emulated_layouts_are_forwarded(backend):
    """A policy restores nested observations from the vec env's layout."""
    kwargs = {"num_workers": 2, "context": "fork"} if backend == "multiprocessing" else {}
    venv = fugu.vector.make("Blackjack-v1", num_envs=2, backend=backend, seed=3, **kwargs)
    try:
        venv.reset()
        sample = venv.observation_layout.unflatten(venv.observations[0])
        assert len(sample) == 3  # Blackjack's Tuple(player sum, dealer card, usable ace)
        assert venv.action_layout.single_action_space.n == 2
    finally:
        venv.close()
