"""RND and ICM hooks: rewards, training, normalisation, targets, state and trainer plumbing."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces

from fugu.algos.ppo import PPO, PPOConfig
from fugu.algos.ppo_rnd import PPORND, PPORNDConfig
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.explore.config import ExploreConfig, make_reward_hooks
from fugu.explore.icm import ICM, ICMConfig
from fugu.explore.normalize import RunningMeanStd
from fugu.explore.rnd import RND, RNDConfig
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.hooks import apply_reward_hooks
from fugu.train.loop import Trainer
from fugu.train.shards import make_train_envs

OBS = spaces.Box(0.0, 1.0, (6,))


def _batch(cells: torch.Tensor, next_cells: torch.Tensor | None = None) -> Batch:
    """A batch of one-hot observations of ``cells [T, N]`` (next: ``next_cells``)."""
    eye = torch.eye(6)
    nxt = cells if next_cells is None else next_cells
    no = torch.zeros(cells.shape, dtype=torch.bool)
    return Batch({
        "observations": eye[cells], "next_observations": eye[nxt], "actions": cells % 2,
        "rewards": torch.zeros(cells.shape), "terminals": no, "truncations": no, "masks": ~no,
    })  # fmt: skip


def test_running_mean_std_matches_numpy_and_forgets_with_max_count() -> None:
    data = torch.randn(1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    stats = RunningMeanStd((3,))
    for chunk in data.split(77):
        stats.update(chunk)
    assert torch.allclose(stats.mean, data.mean(0))
    assert torch.allclose(stats.var, data.var(0, unbiased=False))
    capped = RunningMeanStd((), max_count=10)
    capped.update(torch.zeros(1000))
    capped.update(torch.full((10,), 4.0))
    assert float(capped.mean) == pytest.approx(2.0)  # the old 1000 samples weigh only 10


def test_rnd_novelty_falls_where_the_predictor_trains() -> None:
    hook = RND(OBS, RNDConfig(seed=0, normalize_observations=False, update_epochs=20))
    familiar = _batch(torch.zeros(8, 4, dtype=torch.long))
    before = hook.novelty(torch.eye(6))
    for _ in range(5):
        hook.rewards(familiar)
        hook.update(familiar)
    after = hook.novelty(torch.eye(6))
    assert after[0] < 0.1 * before[0]  # cell 0 learned
    assert (after[1:] > 5 * after[0]).all()  # unseen cells stay novel


def test_rnd_rewards_are_normalised_by_the_intrinsic_return_spread() -> None:
    batch = _batch(torch.randint(0, 6, (16, 4), generator=torch.Generator().manual_seed(0)))
    raw = RND(OBS, RNDConfig(seed=0, normalize_rewards=False)).rewards(batch)
    norm = RND(OBS, RNDConfig(seed=0)).rewards(batch)
    hook = RND(OBS, RNDConfig(seed=0))
    hook.rewards(batch)
    std = float(hook.intrinsic.return_stats.std)
    assert torch.allclose(norm, raw / std, rtol=1e-4)


def test_rnd_needs_next_observations_and_its_state_round_trips() -> None:
    hook = RND(OBS, RNDConfig(seed=0))
    batch = _batch(torch.randint(0, 6, (4, 2), generator=torch.Generator().manual_seed(1)))
    with pytest.raises(APIUsageError, match="next_observations"):
        hook.rewards(Batch({k: v for k, v in batch.items() if k != "next_observations"}))
    hook.rewards(batch)
    hook.update(batch)
    state = hook.state_dict()
    other = RND(OBS, RNDConfig(seed=5))
    other.load_state_dict(state)
    assert torch.equal(other.rewards(batch), hook.rewards(batch))


def test_icm_curiosity_falls_on_learned_transitions_and_inverse_loss_learns() -> None:
    hook = ICM(OBS, spaces.Discrete(2), ICMConfig(seed=0, normalize_rewards=False))
    cells = torch.tensor([[0, 1], [2, 3]]).repeat(4, 2)
    batch = _batch(cells, (cells + 1) % 6)
    first = hook.rewards(batch).mean()
    metrics = {}
    for _ in range(20):
        metrics = hook.update(batch)
    assert hook.rewards(batch).mean() < 0.1 * first
    assert metrics["explore/icm_inverse_loss"] < 0.1  # the action is the parity of the cell
    with pytest.raises(APIUsageError, match="Discrete and Box"):
        ICM(OBS, spaces.MultiDiscrete([2, 2]))


def test_hooks_target_the_intrinsic_critic_of_ppo_rnd() -> None:
    ppo = PPO.build(PPOConfig(), OBS, spaces.Discrete(2), PolicyConfig())
    ppo_rnd = PPORND.build(PPORNDConfig(), OBS, spaces.Discrete(2), PolicyConfig())
    for method in ("rnd", "icm"):
        config = ExploreConfig(method=method)
        (plain,) = make_reward_hooks(config, ppo, OBS, spaces.Discrete(2))
        (split,) = make_reward_hooks(config, ppo_rnd, OBS, spaces.Discrete(2))
        assert (plain.target, split.target) == ("rewards", "intrinsic_rewards")
        batch = _batch(torch.zeros(3, 2, dtype=torch.long))
        apply_reward_hooks([split], batch)
        assert torch.equal(batch["rewards"], torch.zeros(3, 2)) and "intrinsic_rewards" in batch
    with pytest.raises(APIUsageError, match=r"explore\.method"):
        ExploreConfig(method="count")


def test_ppo_rnd_mixes_advantages_and_trains_like_ppo_without_intrinsic_rewards() -> None:
    config = PPORNDConfig(ext_coef=2.0, int_coef=1.0, int_gamma=0.5, update_epochs=1)
    algo = PPORND.build(config, OBS, spaces.Discrete(2), PolicyConfig())
    batch = _batch(torch.zeros(3, 1, dtype=torch.long))
    batch.data["intrinsic_rewards"] = torch.ones(3, 1)
    _, adv, returns = algo._intrinsic_targets(batch, batch["intrinsic_rewards"])
    values = algo.intrinsic_values(batch["observations"])
    # non-episodic: r + 0.5 * V(next) with no cut, lambda 0.95
    delta = 1.0 + 0.5 * values[0, 0] - values[0, 0]
    assert torch.allclose(adv[-1, 0], delta, atol=1e-6)
    ext = torch.full((3, 1), 0.25)
    algo._intrinsic = (adv, returns)
    assert torch.allclose(algo.policy_advantages(batch, ext), 2.0 * ext + adv)
    algo._intrinsic = None
    assert torch.equal(algo.policy_advantages(batch, ext), ext)
    with pytest.raises(APIUsageError, match="V-trace"):
        PPORNDConfig(vtrace_rho_clip=1.0, vtrace_c_clip=1.0)


def test_trainer_stores_next_observations_for_hooks_and_checkpoints_them() -> None:
    def trainer(seed: int) -> Trainer:
        envs = make_train_envs("deep-sea-v1", 4, 0, False, size=4)
        algo = PPORND.build(PPORNDConfig(), envs[0].single_observation_space,
                            envs[0].single_action_space, PolicyConfig())  # fmt: skip
        hooks = make_reward_hooks(ExploreConfig(method="rnd"), algo,
                                  envs[0].single_observation_space, envs[0].single_action_space,
                                  seed=seed)  # fmt: skip
        return Trainer(envs, algo, TrainConfig(num_steps=8, total_timesteps=64), reward_hooks=hooks)

    a = trainer(0)
    assert "next_observations" in a.collector.storage.tensors
    metrics = a.train_epoch()
    assert "loss/intrinsic_value" in metrics and "explore/rnd_loss" in metrics
    state = a.state_dict()
    b = trainer(7)
    b.load_state_dict(state)
    (hook_a,), (hook_b,) = a.reward_hooks, b.reward_hooks
    obs = torch.eye(16)
    assert torch.equal(hook_a.novelty(obs), hook_b.novelty(obs))


def test_novelty_heatmap_is_bright_where_deep_sea_was_not_visited() -> None:
    from fugu.envs.deep_sea import DeepSea
    from fugu.explore.heatmap import novelty_heatmap

    env = DeepSea(size=3)
    hook = RND(spaces.Box(0, 1, (9,)), RNDConfig(seed=0, update_epochs=30, update_proportion=1))
    column0 = torch.eye(9)[[0, 3, 6]][:, None]  # [T=3, N=1, 9]
    no = torch.zeros(3, 1, dtype=torch.bool)
    visited = Batch({
        "observations": column0, "next_observations": column0, "rewards": torch.zeros(3, 1),
        "terminals": no, "truncations": no, "masks": ~no,
    })  # fmt: skip
    for _ in range(3):
        hook.rewards(visited)
        hook.update(visited)
    image = novelty_heatmap(hook, env.cell_observations(), (3, 3), cell_size=2)
    assert image.shape == (6, 6, 3)
    brightness = image[::2, ::2].astype(float).sum(-1)  # one pixel per cell
    assert brightness[:, 0].max() < brightness[:, 1:].min()  # column 0 was visited
