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


@pytest.mark.parametrize("env_id", ["cartpole-v1", "pendulum-v1", "bitflip-v1"])
def test_one_row_env_passes_gymnasium_and_sb3_env_checkers(env_id):
    import warnings

    from gymnasium.utils.env_checker import check_env as gymnasium_check

    from fugu.bridges.gymnasium_env import to_gymnasium_env

    # The checkers raise on contract violations and warn about advice; only these pieces of
    # advice may remain: unbounded observation boxes (as Gymnasium's own CartPole has) and
    # SB3's preference for [-1, 1] action boxes (pendulum's torque is in [-2, 2]); and no
    # alternative render modes to try without a registry spec (fugu envs draw RGB arrays only).
    advice = ("minimum value is -infinity", "maximum value is infinity", "symmetric and normalized",
              "not having a spec")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gymnasium_check(to_gymnasium_env(fugu.make(env_id)), skip_render_check=False)
        pytest.importorskip("stable_baselines3")
        from stable_baselines3.common.env_checker import check_env as sb3_check

        sb3_check(to_gymnasium_env(fugu.make(env_id)), warn=True)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in advice)]
    assert not unexpected


def test_episode_end_returns_the_final_observation_and_asks_for_reset():
    from fugu.bridges.gymnasium_env import to_gymnasium_env

    env = to_gymnasium_env(fugu.make("cartpole-v1"))
    env.reset(seed=0)
    for _ in range(500):
        obs, _, terminated, truncated, _ = env.step(0)  # always left: falls quickly
        if terminated or truncated:
            break
    assert terminated and abs(obs[2]) > 0.2  # the pole angle that ended it, not a fresh start
    with pytest.raises(APIUsageError, match="reset"):
        env.step(0)
    with pytest.raises(APIUsageError, match="one-row"):
        to_gymnasium_env(fugu.make("cartpole-v1", num_envs=2))


def test_eval_renders_a_gymnasium_id(tmp_path, capsys):
    from fugu.cli.main import main

    run = tmp_path / "run"
    args = ["train", "CartPole-v1", "--run-dir", str(run), "--quiet", "--env.num-envs", "2",
            "--train.num-steps", "16", "--train.total-timesteps", "64",
            "--logging.tensorboard", "false"]  # fmt: skip
    assert main(args) == 0
    gif = tmp_path / "eval.gif"
    argv = ["eval", "CartPole-v1", "--checkpoint", str(run), "--episodes", "1", "--render",
            "gif", "--output", str(gif), "--max-frames", "20", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert gif.is_file() and gif.stat().st_size > 0


def test_which_gymnasium_vector_wrappers_work_as_the_docs_say():
    import gymnasium.wrappers.vector as V

    from fugu.bridges.gymnasium_vector import to_gymnasium_vector

    def vec():
        return to_gymnasium_vector(fugu.make("cartpole-v1", num_envs=2))

    working = [
        V.RecordEpisodeStatistics(vec()),
        V.DictInfoToList(vec()),
        V.NormalizeReward(vec()),
        V.ClipReward(vec(), -1.0, 1.0),
        V.TransformReward(vec(), lambda r: r),
        V.TransformAction(vec(), lambda a: a),
    ]
    for wrapper in working:
        wrapper.reset(seed=0)
        for _ in range(30):
            wrapper.step(np.zeros(2, dtype=np.int64))
        wrapper.close()
    with pytest.raises(ValueError, match="autoreset"):
        V.NormalizeObservation(vec())


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
def test_train_and_eval_a_pettingzoo_env_named_by_its_entry_point(tmp_path, backend):
    pytest.importorskip("pettingzoo")
    from fugu.cli.main import main

    entry = "tests.bridges.test_pettingzoo:Classic"  # a PettingZoo ParallelEnv class
    run = tmp_path / "run"
    args = ["train", entry, "--run-dir", str(run), "--quiet", "--env.num-envs", "2",
            "--env.backend", backend, "--env.threads", "2" if backend != "serial" else "1",
            "--train.num-steps", "8", "--train.total-timesteps", "64",
            "--logging.tensorboard", "false"]  # fmt: skip
    assert main(args) == 0
    assert main(["eval", entry, "--checkpoint", str(run), "--episodes", "2", "--json"]) == 0
    with pytest.raises(APIUsageError, match="no attribute"):
        from fugu.bridges.entry import make_env

        make_env("tests.bridges.test_pettingzoo:NoSuchEnv")
