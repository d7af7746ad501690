"""Flattening layouts, structured actions and the Gymnasium wrapper (fugu.core.emulation)."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from collections import OrderedDict
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fugu.core import APIUsageError, EnvContractError
from fugu.core.actions import ActionLayout
from fugu.core.emulation import GymnasiumPufferEnv, episode_info, first_seed
from fugu.core.env import EnvBuffers
from fugu.core.flatten import SpaceLayout, space_leaves


def _load_strategies():
    name = "fugu_tests_spaces_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("spaces_strategies.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


S = _load_strategies()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- observation layouts ------------------------------------------------------------------------
@SETTINGS
@given(space=S.observation_spaces, seed=st.integers(0, 2**16))
def test_flatten_round_trips_random_nested_spaces(space, seed):
    layout = SpaceLayout.from_space(space)
    space.seed(seed)
    sample = space.sample()
    row = layout.flatten(sample)
    assert row.shape == layout.row_shape and row.dtype == layout.row_dtype
    S.assert_nested_equal(layout.unflatten(row), sample, space)
    # the row is described by the row space (bytes rows trivially)
    assert layout.row_space().contains(row)
    # batches: write row 2 of 4 in place through a writer and restore every row at once
    rows = np.zeros((4, *layout.row_shape), layout.row_dtype)
    layout.writer(rows[2])(sample)
    batch = layout.unflatten(rows)
    leaf_views = [batch] if layout.is_passthrough else []
    if not layout.is_passthrough:
        struct = layout.view(rows)
        for leaf in layout.leaves:
            view = struct[leaf.name]
            assert view.shape == (4, *leaf.shape) and np.shares_memory(view, rows)
            leaf_views.append(view)
    np.testing.assert_array_equal(rows[2], row)
    assert not rows[[0, 1, 3]].any()


@SETTINGS
@given(space=S.observation_spaces)
def test_layout_offsets_are_aligned_and_disjoint(space):
    layout = SpaceLayout.from_space(space)
    end = 0
    for leaf in layout.leaves:
        assert leaf.offset % leaf.dtype.itemsize == 0
        assert leaf.offset >= end
        end = leaf.offset + leaf.nbytes
    assert layout.nbytes >= end
    assert layout.nbytes % max(leaf.dtype.itemsize for leaf in layout.leaves) == 0
    dtypes = {leaf.dtype for leaf in layout.leaves}
    if len(dtypes) == 1:
        assert layout.row_dtype == next(iter(dtypes))
        assert layout.nbytes == end  # packed: no padding
    else:
        assert layout.row_dtype == np.uint8
    assert pickle.loads(pickle.dumps(layout)).dtype == layout.dtype


def test_row_dtype_rule():
    floats = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Box(0, 5, (3,))})
    layout = SpaceLayout.from_space(floats)
    assert layout.row_dtype == np.float32 and layout.row_shape == (5,)
    box = layout.row_space()
    assert box.low.tolist() == [-1, -1, 0, 0, 0] and box.high.tolist() == [1, 1, 5, 5, 5]

    mixed = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (1,))))
    layout = SpaceLayout.from_space(mixed)
    assert layout.row_dtype == np.uint8 and layout.row_shape == (16,)
    assert layout.row_space() == spaces.Box(0, 255, (16,), np.uint8)
    assert [leaf.name for leaf in layout.leaves] == ["0", "1"]

    plain = spaces.Box(0, 255, (4, 4, 3), np.uint8)
    layout = SpaceLayout.from_space(plain)
    assert layout.is_passthrough and layout.row_shape == (4, 4, 3)
    assert layout.row_space() is plain
    rows = np.zeros((2, 4, 4, 3), np.uint8)
    assert layout.unflatten(rows) is rows
    assert layout.view(rows)["value"].shape == (2, 4, 4, 3)

    ints = spaces.Dict({"d": spaces.Discrete(4, start=2), "m": spaces.MultiDiscrete([3, 2])})
    box = SpaceLayout.from_space(ints).row_space()
    assert box.dtype == np.int64
    assert box.low.tolist() == [2, 0, 0] and box.high.tolist() == [5, 2, 1]


def test_layout_rejects_unsupported_spaces():
    with pytest.raises(EnvContractError, match="cannot flatten Text"):
        SpaceLayout.from_space(spaces.Dict({"t": spaces.Text(5)}))
    with pytest.raises(EnvContractError, match="empty Tuple"):
        SpaceLayout.from_space(spaces.Tuple(()))
    with pytest.raises(EnvContractError, match="collide"):
        SpaceLayout.from_space(
            spaces.Dict({"a/b": spaces.Discrete(2), "a": spaces.Dict({"b": spaces.Discrete(2)})})
        )
    layout = SpaceLayout.from_space(spaces.Box(0, 1, (3,)))
    with pytest.raises(EnvContractError, match="trailing shape"):
        layout.view(np.zeros((2, 4), np.float32))
    with pytest.raises(EnvContractError, match="cannot hold"):
        layout.padded(2)


def test_padded_and_bytes_layouts_restore_the_same_values():
    space = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Discrete(3)})
    layout = SpaceLayout.from_space(space)
    sample = {"a": np.array([0.5, -0.5], np.float32), "b": 2}
    for other in (layout.as_bytes(), layout.padded(layout.row_shape[0] + 8)):
        row = other.flatten(sample)
        S.assert_nested_equal(other.unflatten(row), sample, space)
    padded = SpaceLayout.from_space(spaces.Box(-1, 1, (2,))).padded(5)
    assert padded.row_space().high.tolist() == [1, 1, 0, 0, 0]
    writer = SpaceLayout.from_space(
        spaces.Dict(OrderedDict([("role", spaces.Discrete(2)), ("obs", spaces.MultiBinary(3))]))
    )
    row = np.zeros(writer.row_shape, writer.row_dtype)
    writer.writer(row, ("obs",))(np.array([1, 0, 1], np.int8))
    assert writer.unflatten(row)["obs"].tolist() == [1, 0, 1]
    assert int(writer.unflatten(row)["role"]) == 0


def test_space_leaves_order_and_paths():
    space = spaces.Tuple(
        (spaces.Discrete(2), spaces.Dict({"x": spaces.Box(0, 1), "y": spaces.Discrete(2)}))
    )
    assert [path for path, _ in space_leaves(space)] == [(0,), (1, "x"), (1, "y")]


# -- structured actions -------------------------------------------------------------------------
@SETTINGS
@given(space=S.action_spaces, seed=st.integers(0, 2**16))
def test_actions_round_trip_random_nested_spaces(space, seed):
    layout = ActionLayout.from_space(space)
    space.seed(seed)
    sample = space.sample()
    row = layout.encode(sample)
    flat = layout.single_action_space
    assert flat.contains(row) or (isinstance(flat, spaces.Discrete) and flat.contains(int(row)))
    decoded = layout.decode(row)
    assert space.contains(decoded)
    S.assert_nested_equal(decoded, sample, space)
    assert pickle.loads(pickle.dumps(layout)).single_action_space == flat


def test_action_layout_kinds():
    layout = ActionLayout.from_space(spaces.Discrete(4, start=-2))
    assert layout.single_action_space == spaces.Discrete(4) and not layout.is_identity
    assert layout.decode(np.int32(3)) == 1 and layout.encode(-2).tolist() == 0
    assert ActionLayout.from_space(spaces.Discrete(3)).is_identity

    layout = ActionLayout.from_space(spaces.MultiBinary((2, 2)))
    assert layout.single_action_space == spaces.MultiDiscrete([2, 2, 2, 2])
    assert layout.decode(np.array([1, 0, 0, 1])).tolist() == [[1, 0], [0, 1]]

    layout = ActionLayout.from_space(spaces.Box(-2, 2, (2,), np.float64))
    assert layout.kind == "continuous" and not layout.is_identity
    assert layout.decode(np.array([0.5, 1.0], np.float32)).dtype == np.float64

    both = spaces.Tuple((spaces.MultiDiscrete([3, 4]), spaces.Discrete(2)))
    layout = ActionLayout.from_space(both)
    assert layout.single_action_space == spaces.MultiDiscrete([3, 4, 2])
    assert layout.kind == "discrete"

    mixed = spaces.Dict(
        {"aim": spaces.Box(-1, 1, (2,)), "fire": spaces.MultiBinary(1), "gear": spaces.Discrete(3)}
    )
    layout = ActionLayout.from_space(mixed)
    assert layout.kind == "mixed" and layout.num_discrete == 2 and layout.num_continuous == 2
    assert layout.nvec.tolist() == [2, 3]
    assert layout.single_action_space.low.tolist() == [0, 0, -1, -1]
    assert layout.single_action_space.high.tolist() == [1, 2, 1, 1]
    # discrete entries are rounded and clipped to their range
    action = layout.decode(np.array([0.7, 9.0, 0.25, -0.5], np.float32))
    assert action["fire"].tolist() == [1] and int(action["gear"]) == 2
    assert action["aim"].tolist() == [0.25, -0.5]
    assert mixed.contains(action)

    integer_box = ActionLayout.from_space(spaces.Dict({"n": spaces.Box(0, 9, (2,), np.int32)}))
    assert integer_box.decode(np.array([1.6, 3.2], np.float32))["n"].tolist() == [2, 3]


# -- the Gymnasium wrapper ----------------------------------------------------------------------
def test_cartpole_matches_gymnasium_trajectory():
    env = GymnasiumPufferEnv.from_id("CartPole-v1")
    reference = gymnasium.make("CartPole-v1")
    obs, infos = env.reset(seed=3)
    ref_obs, _ = reference.reset(seed=3)
    assert infos == [] and obs is env.observations
    np.testing.assert_array_equal(obs[0], ref_obs)
    rng = np.random.default_rng(0)
    episodes = 0
    ret = 0.0
    length = 0
    for _ in range(300):
        action = int(rng.integers(2))
        obs, rewards, terminals, truncations, infos = env.step(np.array([action], np.int32))
        ref_obs, ref_reward, ref_term, ref_trunc, _ = reference.step(action)
        ret += ref_reward
        length += 1
        assert rewards[0] == ref_reward
        assert terminals[0] == ref_term and truncations[0] == ref_trunc
        if ref_term or ref_trunc:
            episodes += 1
            np.testing.assert_array_equal(env.final_observations[0], ref_obs)
            assert infos == [{"episode_return": ret, "episode_length": length, "num_episodes": 1}]
            ref_obs, _ = reference.reset()
            ret, length = 0.0, 0
        else:
            assert infos == []
        np.testing.assert_array_equal(obs[0], ref_obs)
    assert episodes >= 5
    env.close()
    env.close()
    reference.close()


class NestedEnv(gymnasium.Env):
    """Dict observation and mixed Dict action; the episode ends after ``horizon`` steps."""

    def __init__(self, horizon: int = 3) -> None:
        self.horizon = horizon
        self.observation_space = spaces.Dict(
            {
                "pos": spaces.Box(-10, 10, (2,), np.float32),
                "step": spaces.Discrete(horizon + 1),
                "flags": spaces.Tuple((spaces.MultiBinary(2), spaces.Discrete(3, start=-1))),
            }
        )
        self.action_space = spaces.Dict(
            {"move": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3, start=-1)}
        )
        self.t = 0
        self.pos = np.zeros(2, np.float32)
        self.actions: list = []

    def _obs(self):
        return {
            "pos": self.pos.copy(),
            "step": self.t,
            "flags": (np.array([self.t % 2, 1], np.int8), int(self.pos[0] > 0) - 1 + 1),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action)
        self.actions.append(action)
        self.t += 1
        self.pos = self.pos + action["move"] * action["mode"]
        done = self.t >= self.horizon
        return self._obs(), float(action["mode"]), done, False, {"score": 7, "name": "x"}


def test_nested_env_writes_in_place_and_autoresets():
    env = GymnasiumPufferEnv(NestedEnv)
    layout = env.observation_layout
    assert env.observations.dtype == np.uint8 and env.single_observation_space.dtype == np.uint8
    assert env.action_layout.kind == "mixed"
    obs, _ = env.reset(seed=[5, 6])
    first = layout.unflatten(obs[0])
    assert int(first["step"]) == 0 and first["pos"].dtype == np.float32
    views = layout.unflatten(env.observations)
    action = env.action_layout.encode({"move": np.array([0.5, 0.5], np.float32), "mode": 1})
    for _t in range(1, 4):
        obs, rewards, terminals, _, infos = env.step(action[None])
        assert rewards[0] == 1.0
        assert env.env.actions[-1]["mode"] == 1
    # step 3 ended the episode: the final observation is kept, observations are a new episode
    final = layout.unflatten(env.final_observations[0])
    assert terminals[0] and int(final["step"]) == 3 and int(views["step"][0]) == 0
    assert infos == [{"score": 7.0, "episode_return": 3.0, "episode_length": 3, "num_episodes": 1}]


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
def test_wrapper_seeding_buffers_and_errors():
    a = GymnasiumPufferEnv.from_id("CartPole-v1")
    b = GymnasiumPufferEnv(lambda: gymnasium.make("CartPole-v1"))
    np.testing.assert_array_equal(a.reset(seed=9)[0], b.reset(seed=[9])[0])
    buffers = EnvBuffers.allocate(a.single_observation_space, a.single_action_space, 3)
    c = GymnasiumPufferEnv.from_id("CartPole-v1", buffers=buffers.rows(1, 2))
    c.reset(seed=9)
    np.testing.assert_array_equal(buffers.observations[1], a.observations[0])
    with pytest.raises(APIUsageError, match="shape"):
        a.step(np.zeros(2, np.int32))
    with pytest.raises(APIUsageError, match="render_mode"):
        a.render()
    with pytest.raises(APIUsageError, match="one row"):
        a.render(row=1)
    for env in (a, b, c):
        env.close()
    with pytest.raises(APIUsageError, match="closed"):
        a.reset()
    with pytest.raises(APIUsageError, match=r"gymnasium\.Env"):
        GymnasiumPufferEnv(3)  # type: ignore[arg-type]
    with pytest.raises(APIUsageError, match="not an Env"):
        GymnasiumPufferEnv(lambda: 3)  # type: ignore[arg-type,return-value]
    assert first_seed(None) is None and first_seed(np.int64(4)) == 4 and first_seed([2, 3]) == 2
    assert episode_info(1, 2, {"ok": True}) == {
        "episode_return": 1.0,
        "episode_length": 2,
        "num_episodes": 1,
    }


def test_render_and_repr():
    env = GymnasiumPufferEnv.from_id("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.dtype == np.uint8
    assert "CartPole" in repr(env)
    env.close()


def test_registry_falls_back_to_gymnasium_ids():
    import fugu

    env = fugu.make("Pendulum-v1")
    assert isinstance(env, GymnasiumPufferEnv)
    obs, _ = env.reset(seed=0)
    obs, rewards, *_ = env.step(np.zeros((1, 1), np.float32))
    assert obs.dtype == np.float32 and rewards.dtype == np.float32
    env.close()


def test_gymnasium_action_masks_follow_info_through_autoreset() -> None:
    import gymnasium

    from fugu.core.schema import action_masks_field

    class Masked(gymnasium.Env):
        """Discrete(3); the mask allows only action ``t % 3``; episodes last 2 steps."""

        observation_space = gymnasium.spaces.Box(0, 10, (1,), np.float32)
        action_space = gymnasium.spaces.Discrete(3)

        def _info(self):
            mask = np.zeros(3, np.int8)
            mask[self.t % 3] = 1
            return {"action_mask": mask}

        def reset(self, seed=None, options=None):
            self.t = 1
            return np.array([self.t], np.float32), self._info()

        def step(self, action):
            self.t += 1
            done = self.t == 3
            return np.array([self.t], np.float32), 0.0, done, False, self._info()

    env = GymnasiumPufferEnv(Masked(), action_masks=True)
    assert env.extra_fields == {"action_masks": action_masks_field(3)}
    env.reset(seed=0)
    assert env.action_masks.tolist() == [[False, True, False]]
    env.step(np.zeros(1, np.int32))
    assert env.action_masks.tolist() == [[False, False, True]]
    _, _, terminals, _, _ = env.step(np.zeros(1, np.int32))  # ends: the reset's mask (t = 1)
    assert terminals[0] and env.action_masks.tolist() == [[False, True, False]]
    assert GymnasiumPufferEnv(Masked()).extras == {}


class _LooseEnv(gymnasium.Env):
    """A Gymnasium env that breaks the step contract in the way ``kind`` says."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def reset(self, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        obs = np.zeros(2, np.float32)
        if self.kind == "vector-reward":
            return obs, np.array([1.0, 2.0]), False, False, {}
        if self.kind == "list-info":
            return obs, 1.0, False, False, []
        if self.kind == "old-api":
            return obs, 1.0, False, {}
        return obs, 1.0, False, False, {}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("vector-reward", "one real scalar"),
        ("list-info", "info is a dict"),
        ("old-api", "5-tuple|terminated, truncated"),
    ],
)
def test_a_broken_step_contract_gets_a_clear_error(kind: str, message: str) -> None:
    env = GymnasiumPufferEnv(_LooseEnv(kind))
    env.reset(seed=0)
    with pytest.raises(EnvContractError, match=message):
        env.step(np.zeros(1, np.int64))


def test_a_sound_step_is_checked_once() -> None:
    env = GymnasiumPufferEnv(_LooseEnv("fine"))
    env.reset(seed=0)
    env.step(np.zeros(1, np.int64))
    assert env._env_step == env.env.step  # later steps skip the check
    env.step(np.zeros(1, np.int64))
    assert env.rewards[0] == 1.0
