"""fugu.data: storage round-trips (disk and Minari), return-to-go and timesteps against slow
references, context windows that never cross episodes, recording from a vec env."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from fugu.data import (
    DatasetError,
    DatasetMetadata,
    EpisodeRecorder,
    TrajectoryDataset,
    episode_timesteps,
    returns_to_go,
    sample_windows,
    space_from_dict,
    space_to_dict,
)


def make_dataset(seed: int = 0, episodes: int = 7, extras: bool = True) -> TrajectoryDataset:
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(episodes):
        length = int(rng.integers(1, 12))
        ep = {
            "observations": rng.normal(size=(length, 3)).astype(np.float32),
            "actions": rng.integers(0, 4, length),
            "rewards": rng.normal(size=length).astype(np.float32),
            "terminals": np.r_[np.zeros(length - 1, bool), rng.random() < 0.5],
            "final_observation": rng.normal(size=3).astype(np.float32),
        }
        ep["truncations"] = np.r_[np.zeros(length - 1, bool), not ep["terminals"][-1]]
        if extras:
            ep["costs"] = rng.random(length).astype(np.float32)
        eps.append(ep)
    meta = DatasetMetadata(
        env_id="probe-v2",
        policy="random",
        observation_space=space_to_dict(spaces.Box(-np.inf, np.inf, (3,), np.float32)),
        action_space=space_to_dict(spaces.Discrete(4)),
    )
    return TrajectoryDataset.from_episodes(eps, meta)


def assert_same(a: TrajectoryDataset, b: TrajectoryDataset) -> None:
    assert sorted(a.arrays) == sorted(b.arrays)
    for name in a.arrays:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert a.metadata == b.metadata


def test_save_load_round_trip_is_memory_mapped(tmp_path):
    data = make_dataset()
    data.save(tmp_path / "d")
    loaded = TrajectoryDataset.load(tmp_path / "d")
    assert_same(data, loaded)
    assert isinstance(loaded.observations, np.memmap)
    assert loaded.metadata.extras == ["costs"] and loaded.metadata.env_version == 2
    with pytest.raises(DatasetError, match="exists"):
        data.save(tmp_path / "d")


def test_fugu_to_minari_to_fugu_is_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    from fugu.data import from_minari, to_minari

    data = make_dataset(1)
    to_minari(data, "fugu/probe-test-v0")
    assert (tmp_path / "minari" / "fugu" / "probe-test-v0").is_dir()
    assert_same(data, from_minari("fugu/probe-test-v0"))
    import minari

    foreign = minari.load_dataset("fugu/probe-test-v0")
    assert foreign.total_steps == data.num_transitions
    assert foreign.total_episodes == data.num_episodes


def test_returns_to_go_and_timesteps_match_slow_references():
    data = make_dataset(2, episodes=20)
    rewards, starts = np.asarray(data.rewards, np.float64), data.episode_starts
    for gamma in (1.0, 0.9):
        slow = np.zeros_like(rewards)
        steps = np.zeros(len(rewards), np.int64)
        for e in range(data.num_episodes):
            for t in range(starts[e], starts[e + 1]):
                slow[t] = sum(gamma ** (k - t) * rewards[k] for k in range(t, starts[e + 1]))
                steps[t] = t - starts[e]
        np.testing.assert_allclose(returns_to_go(rewards, starts, gamma), slow, atol=1e-9)
        np.testing.assert_array_equal(episode_timesteps(starts), steps)
    np.testing.assert_allclose(data.returns_to_go()[starts[:-1]], data.episode_returns)


@pytest.mark.parametrize("context", [1, 4, 16])
def test_context_windows_never_cross_episodes_and_pad_on_the_left(context):
    data = make_dataset(3, episodes=30)
    w = sample_windows(data, 256, context, np.random.default_rng(0), extras=("costs",))
    obs = np.asarray(data.observations)
    rtg, steps, ids = data.returns_to_go(), data.timesteps(), data.episode_ids
    for b in range(256):
        valid = w["masks"][b]
        assert valid[-1] and np.all(np.diff(valid.astype(int)) >= 0)  # padding only on the left
        assert not w["observations"][b][~valid].any() and not w["actions"][b][~valid].any()
        # the valid part is consecutive steps of one episode, ending anywhere
        t = w["timesteps"][b][valid]
        assert np.all(np.diff(t) == 1)
        rows = [int(np.flatnonzero((obs == o).all(1))[0]) for o in w["observations"][b][valid]]
        assert len({int(ids[r]) for r in rows}) == 1
        np.testing.assert_array_equal(steps[rows], t)
        np.testing.assert_allclose(rtg[rows], w["returns_to_go"][b][valid], rtol=1e-6)
        if not valid.all():  # padded only when the episode is too short here
            assert t[0] == 0
    again = sample_windows(data, 256, context, np.random.default_rng(0), extras=("costs",))
    assert all(np.array_equal(w[k], again[k]) for k in w)  # seeded


def test_top_episodes_keeps_the_best_returns():
    data = make_dataset(4, episodes=10)
    top = data.top_episodes(0.3)
    assert top.num_episodes == 3
    assert sorted(top.episode_returns) == sorted(np.sort(data.episode_returns)[-3:])
    with pytest.raises(Exception, match="fraction"):
        data.top_episodes(0.0)


def test_spaces_round_trip():
    for space in (
        spaces.Discrete(3, start=1),
        spaces.Box(-1, 2, (2, 2)),
        spaces.MultiDiscrete([2, 5]),
    ):
        assert space_from_dict(space_to_dict(space)) == space


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        TrajectoryDataset.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a fugu dataset"):
        TrajectoryDataset.load(tmp_path / "empty")
    (tmp_path / "minari" / "data").mkdir(parents=True)
    (tmp_path / "minari" / "data" / "main_data.hdf5").write_bytes(b"")
    with pytest.raises(DatasetError, match="Minari"):
        TrajectoryDataset.load(tmp_path / "minari")


def test_recorder_keeps_whole_episodes_of_a_vec_env():
    import fugu

    env = fugu.make("cartpole-v1", num_envs=3)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(0)
    rec = EpisodeRecorder(3)
    lengths = np.zeros(3, int)
    expected = []
    while rec.num_episodes < 10:
        before = obs.copy()
        actions = rng.integers(0, 2, 3)
        obs, rewards, terms, truncs, _ = env.step(actions)
        lengths += 1
        rec.add(before, actions, rewards, terms, truncs, env.final_observations)
        for row in np.flatnonzero(terms | truncs):
            expected.append(int(lengths[row]))
            lengths[row] = 0
    env.close()
    data = rec.dataset()
    assert data.episode_lengths.tolist() == expected
    ends = data.episode_starts[1:] - 1
    done = np.asarray(data["terminals"]) | np.asarray(data["truncations"])
    assert done[ends].all() and done.sum() == data.num_episodes
    np.testing.assert_allclose(data.episode_returns, expected)  # cartpole: +1 per step
