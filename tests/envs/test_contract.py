"""Every registered fugu env passes fugu.check_env, at several row counts and thread counts."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.envs.native import NativeEnv
from fugu.vector import EnvFactory

# Native ids (vectorized, num_envs rows); one-row Gymnasium-built ids are tested with the
# bridges.
IDS = [env_id for env_id in fugu.registered_ids() if EnvFactory(env_id).accepts("num_envs")]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize(("num_envs", "threads"), [(1, 1), (5, 2)])
def test_check_env(env_id: str, num_envs: int, threads: int) -> None:
    fugu.check_env(lambda: fugu.make(env_id, num_envs=num_envs, threads=threads), num_steps=120)


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_double_buffered(env_id: str) -> None:
    per_copy = fugu.make(env_id).agents_per_env
    fugu.check_env(
        lambda: fugu.make(env_id, num_envs=4, threads=2, batch_size=2 * per_copy), num_steps=60
    )


@pytest.mark.parametrize("env_id", IDS)
def test_native_constructor_convention(env_id: str) -> None:
    env = fugu.make(env_id, num_envs=3, threads=1, seed=0)
    assert isinstance(env, NativeEnv)
    assert env.num_agents == 3 * env.agents_per_env
    obs, infos = env.reset()
    assert obs is env.observations and infos == []
    state = env.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    env.close()
