"""Decision Transformer and (filtered) behaviour cloning on tiny synthetic datasets: they
imitate, return conditioning changes behaviour, Box actions, save/load, clear errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos.bc import BC, BCConfig
from fugu.algos.dt import DT, DTConfig
from fugu.core.errors import APIUsageError
from fugu.data import DatasetError, DatasetMetadata, TrajectoryDataset, space_to_dict
from fugu.models import PolicyConfig

OBS = spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one torch thread is fastest (and fair on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LENGTH = 5


def bit_dataset(num_good: int, num_bad: int, seed: int = 0) -> TrajectoryDataset:
    """Observations carry a random bit (as +-1 in slot 0). Good episodes copy it into the
    action (reward 1 per step), bad ones take the other action (reward 0)."""
    rng = np.random.default_rng(seed)
    eps = []
    for good in [True] * num_good + [False] * num_bad:
        bits = rng.integers(0, 2, LENGTH)
        obs = np.stack([2.0 * bits - 1.0, rng.normal(size=LENGTH) * 0.1], 1).astype(np.float32)
        actions = bits if good else 1 - bits
        eps.append(
            {
                "observations": obs,
                "actions": actions.astype(np.int64),
                "rewards": np.full(LENGTH, float(good), np.float32),
            }
        )
    meta = DatasetMetadata(
        observation_space=space_to_dict(OBS), action_space=space_to_dict(spaces.Discrete(2))
    )
    return TrajectoryDataset.from_episodes(eps, meta)


def train(algo, data, updates: int):
    batches = algo.batches(data)
    for _ in range(updates):
        metrics = algo.update(next(batches))
    return metrics


def dt_accuracy(algo: DT, target: float, seed: int = 1, rows: int = 64) -> float:
    """Fraction of steps where the DT copies the bit, asking for ``target`` per episode."""
    algo.set_target_return(target)
    rng = np.random.default_rng(seed)
    state = algo.initial_state(rows)
    hits = 0
    for _ in range(LENGTH):
        bits = rng.integers(0, 2, rows)
        obs = torch.as_tensor(np.stack([2.0 * bits - 1, np.zeros(rows)], 1), dtype=torch.float32)
        out = algo.act(obs, state, {}, deterministic=True)
        copied = out.actions.numpy() == bits
        hits += int(copied.sum())
        state = algo.observe_rewards(torch.as_tensor(copied, dtype=torch.float32), out.state)
    return hits / (rows * LENGTH)


def small_dt(**kwargs) -> DT:
    torch.manual_seed(0)
    config = DTConfig(
        context_length=LENGTH, batch_size=32, embed_dim=32, num_layers=1, num_heads=2,
        warmup_updates=10, learning_rate=3e-3, **kwargs,
    )  # fmt: skip
    return DT.build(config, OBS, spaces.Discrete(2), PolicyConfig())


def test_dt_conditions_on_the_return_asked_for():
    algo = small_dt()
    metrics = train(algo, bit_dataset(40, 40), 120)
    assert metrics["loss/action"] < 0.2
    assert algo.target_return == LENGTH  # the dataset's best return by default
    assert dt_accuracy(algo, float(LENGTH)) > 0.9  # ask for the best: copies the bit
    assert dt_accuracy(algo, 0.0) < 0.1  # ask for nothing: does the opposite


def test_bc_imitates_and_percent_bc_filters_the_bad_episodes():
    data = bit_dataset(20, 60)
    for fraction in (1.0, 0.25):
        torch.manual_seed(0)
        config = BCConfig(top_fraction=fraction, hidden_sizes=(32,), batch_size=64)
        algo = BC.build(config, OBS, spaces.Discrete(2), PolicyConfig())
        train(algo, data, 150)
        bits = np.array([0, 1, 1, 0])
        obs = torch.as_tensor(np.stack([2.0 * bits - 1, np.zeros(4)], 1), dtype=torch.float32)
        acts = algo.act(obs, None, {}, deterministic=True).actions.numpy()
        if fraction == 1.0:  # mostly bad data: plain BC clones the bad behaviour
            np.testing.assert_array_equal(acts, 1 - bits)
        else:  # the best quarter is exactly the good episodes
            assert algo.episodes_kept == 20
            np.testing.assert_array_equal(acts, bits)


def box_dataset() -> TrajectoryDataset:
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(30):
        obs = rng.uniform(-1, 1, (LENGTH, 2)).astype(np.float32)
        eps.append(
            {
                "observations": obs,
                "actions": (1.5 * obs[:, :1]).astype(np.float32),  # expert: a = 1.5 * x
                "rewards": np.ones(LENGTH, np.float32),
            }
        )
    act_space = spaces.Box(-2.0, 2.0, (1,), np.float32)
    meta = DatasetMetadata(
        observation_space=space_to_dict(OBS), action_space=space_to_dict(act_space)
    )
    return TrajectoryDataset.from_episodes(eps, meta)


@pytest.mark.parametrize("name", ["dt", "bc"])
def test_box_actions_are_imitated_within_bounds(name):
    torch.manual_seed(0)
    act_space = spaces.Box(-2.0, 2.0, (1,), np.float32)
    if name == "dt":
        algo = DT.build(
            DTConfig(context_length=3, embed_dim=32, num_layers=1, batch_size=32,
                     warmup_updates=10, learning_rate=3e-3),
            OBS, act_space, PolicyConfig(),
        )  # fmt: skip
    else:
        algo = BC.build(BCConfig(hidden_sizes=(32,), batch_size=64), OBS, act_space, PolicyConfig())
    train(algo, box_dataset(), 150)
    obs = torch.tensor([[0.5, 0.0], [-0.8, 0.3]])
    out = algo.act(obs, algo.initial_state(2), {}, deterministic=True)
    assert out.actions.shape == (2, 1)
    np.testing.assert_allclose(out.actions.numpy()[:, 0], [0.75, -1.2], atol=0.25)


def test_dt_save_load_acts_the_same(tmp_path):
    algo = small_dt()
    train(algo, bit_dataset(10, 10), 20)
    copy = small_dt(seed=5)
    for name, module in algo.modules().items():
        copy.modules()[name].load_state_dict(module.state_dict())
    copy.load_state_dict(algo.state_dict())
    assert copy.target_return == algo.target_return
    obs = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    a = algo.act(obs, algo.initial_state(2), {}, deterministic=True)
    b = copy.act(obs, copy.initial_state(2), {}, deterministic=True)
    torch.testing.assert_close(a.actions, b.actions)
    batches_a, batches_b = algo.batches(bit_dataset(10, 10)), copy.batches(bit_dataset(10, 10))
    for x, y in itertools.islice(zip(batches_a, batches_b), 2):  # the sampler resumes too
        torch.testing.assert_close(x["observations"], y["observations"])


def test_dt_context_resets_per_row():
    algo = small_dt()
    state = algo.initial_state(2)
    out = algo.act(torch.zeros(2, 2), state, {})
    state = algo.observe_rewards(torch.tensor([1.0, 2.0]), out.state)
    assert state["masks"][:, -1].all() and state["step"].tolist() == [1, 1]
    state = algo.reset_state(state, torch.tensor([True, False]))
    assert not state["masks"][0].any() and state["masks"][1, -1]
    assert state["to_go"].tolist() == [algo.target_return, algo.target_return - 2.0]


def test_missing_or_wrong_dataset_is_a_clear_error(tmp_path):
    algo = small_dt()
    with pytest.raises(APIUsageError, match="--dataset PATH"):
        algo.dataset()
    bad = DT.build(
        DTConfig(dataset=str(tmp_path / "nope")), OBS, spaces.Discrete(2), PolicyConfig()
    )
    with pytest.raises(DatasetError, match="no such file"):
        bad.dataset()
    box_dataset().save(tmp_path / "box")
    wrong = BC.build(
        BCConfig(dataset=str(tmp_path / "box")), spaces.Box(-1, 1, (3,)), spaces.Discrete(2),
        PolicyConfig(),
    )  # fmt: skip
    with pytest.raises(DatasetError, match="shape"):
        wrong.dataset()
    with pytest.raises(APIUsageError, match="divide"):
        DTConfig(embed_dim=30, num_heads=4)


def test_dt_inference_context_matches_the_training_windows():
    """Replaying a dataset episode through act/observe_rewards, asking for its own return,
    builds exactly the window training samples there: the same scaled returns-to-go
    (decremented by each reward), timesteps, normalised observations and padding."""
    from fugu.data.sampling import window_indices

    data = bit_dataset(6, 6, seed=3)
    torch.manual_seed(0)
    config = DTConfig(context_length=3, embed_dim=16, num_layers=1)
    algo = DT.build(config, OBS, spaces.Discrete(2), PolicyConfig())
    algo.fit_stats(data)
    scale = float(algo.stats.rtg_scale)
    episode = 7  # a bad one (return 0): the target is not the dataset's best
    lo, hi = int(data.episode_starts[episode]), int(data.episode_starts[episode + 1])
    rewards = np.asarray(data.rewards[lo:hi]) + np.arange(hi - lo)  # rewards that differ
    algo.set_target_return(float(rewards.sum()))
    rtg = np.cumsum(rewards[::-1])[::-1] / scale
    state = algo.initial_state(1)
    for t in range(hi - lo):
        obs = torch.as_tensor(np.asarray(data.observations[lo + t : lo + t + 1]))
        state = algo.act(obs, state, {}, deterministic=True).state
        index, valid = window_indices(data.episode_starts, data.episode_ids, np.array([lo + t]), 3)
        np.testing.assert_array_equal(state["masks"][0].numpy(), valid[0])
        in_episode = index[0][valid[0]] - lo
        np.testing.assert_allclose(state["rtg"][0][valid[0]].numpy(), rtg[in_episode], rtol=1e-6)
        np.testing.assert_array_equal(state["timesteps"][0][valid[0]].numpy(), in_episode)
        normalized = algo.stats.normalize(torch.as_tensor(np.asarray(data.observations)[index[0]]))
        torch.testing.assert_close(state["obs"][0][valid[0]], normalized[valid[0]])
        state = algo.observe_rewards(torch.tensor([float(rewards[t])]), state)
