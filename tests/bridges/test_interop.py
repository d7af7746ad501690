"""What real clients expect of fugu envs: a render mode, ``render_mode=`` accepted by
``fugu.make``, and ids registered in this process usable by spawned workers."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
import fugu.vector
from fugu.core.errors import APIUsageError
from fugu.core.registry import default_registry


def test_envs_that_render_report_rgb_array_and_accept_the_render_mode():
    env = fugu.make("cartpole-v1", num_envs=2, render_mode="rgb_array")
    assert env.render_mode == "rgb_array"
    env.reset(seed=0)
    assert env.render(0).dtype == np.uint8 and env.render(0).ndim == 3
    env.close()
    assert fugu.make("pendulum-v1").render_mode == "rgb_array"
    assert fugu.make("cartpole-v1", render_mode=None).render_mode == "rgb_array"
    with pytest.raises(APIUsageError, match="rgb_array"):
        fugu.make("cartpole-v1", render_mode="human")
    plain = fugu.PufferEnv(fugu.make("cartpole-v1").single_observation_space,
                           fugu.make("cartpole-v1").single_action_space, 1)  # fmt: skip
    assert plain.render_mode is None  # it does not render


def test_bridges_advertise_the_render_mode():
    from fugu.bridges.gymnasium_vector import to_gymnasium_vector

    vec = to_gymnasium_vector(fugu.make("cartpole-v1", num_envs=2))
    assert vec.render_mode == "rgb_array" and "rgb_array" in vec.metadata["render_modes"]
    vec.reset(seed=0)
    assert len(vec.render()) == 2
    vec.close()
    pytest.importorskip("stable_baselines3")
    from fugu.bridges.sb3 import to_sb3

    sb3 = to_sb3(fugu.make("cartpole-v1", num_envs=2))
    assert sb3.render_mode == "rgb_array" and sb3.get_attr("render_mode")[0] == "rgb_array"
    sb3.close()


def test_ids_registered_here_work_in_spawned_workers():
    fugu.register("interop-bitflip-v0", "fugu.envs.bitflip:BitFlip", n=3)
    try:
        env = fugu.vector.make(
            "interop-bitflip-v0", 4, backend="multiprocessing", num_workers=2, context="spawn"
        )
        try:
            obs, _ = env.reset(seed=0)
            assert obs.shape == (4, 9)  # the registered kwargs (n=3) reached the workers
            env.step(np.zeros(4, np.int32))
        finally:
            env.close()
    finally:
        default_registry._specs.pop("interop-bitflip-v0", None)
