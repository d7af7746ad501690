"""DQN, SAC and TD3 through the trainer: they learn probes, respect action masks and Box
bounds, bootstrap truncations from final observations, learn bit flipping with hindsight
relabelling, and resume bitwise (replay ring included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos.dqn import DQN, DQNConfig
from fugu.algos.registry import get_algorithm
from fugu.algos.sac import SAC, SACConfig, SquashedGaussianActor
from fugu.algos.td3 import TD3, TD3Config
from fugu.buffers import Batch
from fugu.core.errors import APIUsageError
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer, make_train_envs

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine

SMALL = {"hidden_sizes": (32, 32)}


def _trainer(env_id, algo_type, config, num_envs, num_steps, total, **env_kwargs):
    envs = make_train_envs(env_id, num_envs, seed=0, double_buffer=False, **env_kwargs)
    env = envs[0]
    algo = algo_type.build(config, env.single_observation_space, env.single_action_space,
                           PolicyConfig())  # fmt: skip
    return Trainer(envs, algo, TrainConfig(num_steps=num_steps, total_timesteps=total))


def test_registered_off_policy_algorithms():
    assert get_algorithm("dqn") is DQN and get_algorithm("sac") is SAC
    assert get_algorithm("td3") is TD3
    with pytest.raises(APIUsageError, match="box"):
        DQN.build(DQNConfig(), spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), PolicyConfig())
    with pytest.raises(APIUsageError, match="her_strategy"):
        SACConfig(her_strategy="later")


@pytest.mark.parametrize(
    "options",
    [{"double_q": True, "dueling": True}, {"double_q": False, "tau": 0.5, "prioritized": True}],
)
def test_dqn_learns_the_observation_probe(options):
    config = DQNConfig(learning_rate=3e-3, learning_starts=64, batch_size=64, gradient_steps=4,
                       target_update_interval=8, exploration_fraction=0.3,
                       **SMALL, **options)  # fmt: skip
    trainer = _trainer("probe-observation-v1", DQN, config, 8, 2, 1600)
    trainer.train()
    trainer.close()
    assert trainer.episodes.mean_return(50) > 0.8  # final epsilon 0.05 costs ~0.05


@pytest.mark.parametrize("n_step", [1, 2])
def test_dqn_values_discount_the_delayed_probe(n_step):
    gamma = 0.8
    config = DQNConfig(learning_rate=3e-3, gamma=gamma, learning_starts=32, batch_size=64,
                       gradient_steps=8, target_update_interval=4, tau=0.5, n_step=n_step,
                       **SMALL)  # fmt: skip
    trainer = _trainer("probe-delayed-v1", DQN, config, 4, 4, 1500)
    trainer.train()
    trainer.close()
    q = trainer.algo.q(torch.tensor([[0.0], [1.0]])).max(-1).values.detach()
    assert q.tolist() == pytest.approx([gamma, 1.0], abs=0.1)


def test_dqn_never_picks_masked_actions():
    algo = DQN.build(DQNConfig(**SMALL), spaces.Box(-1, 1, (3,)), spaces.Discrete(4),
                     PolicyConfig())  # fmt: skip
    masks = torch.tensor([[False, True, False, True]]).repeat(500, 1)
    masks[::2] = torch.tensor([True, False, False, False])
    for progress in (0.0, 1.0):  # epsilon 1 (all random) and 0.05
        algo.progress = progress
        actions = algo.act(torch.randn(500, 3), None, {"action_masks": masks}).actions
        assert bool(masks.gather(1, actions.unsqueeze(-1)).all())
    greedy = algo.act(torch.randn(500, 3), None, {"action_masks": masks}, deterministic=True)
    assert bool(masks.gather(1, greedy.actions.unsqueeze(-1)).all())


def test_dqn_target_bootstraps_truncations_but_not_terminals():
    config = DQNConfig(hidden_sizes=(4,), learning_rate=0.0, gamma=0.5, loss="mse")
    algo = DQN.build(config, spaces.Box(-1, 1, (1,)), spaces.Discrete(2), PolicyConfig())
    for p in [*algo.q.parameters(), *algo.q_target.parameters()]:
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        algo.q.q[-1].bias.fill_(2.0)  # Q = 2 everywhere
        algo.q_target.q[-1].bias.fill_(2.0)
    batch = Batch({
        "observations": torch.zeros(2, 1), "next_observations": torch.zeros(2, 1),
        "actions": torch.zeros(2, dtype=torch.long), "rewards": torch.ones(2),
        "terminals": torch.tensor([True, False]), "truncations": torch.tensor([False, True]),
    })  # fmt: skip
    loss = algo.update(batch, 0.0)["loss/td"]
    # targets: terminal 1, truncated 1 + 0.5 * 2 = 2; Q = 2: squared errors 1 and 0
    assert loss == pytest.approx(0.5, abs=1e-4)


def test_squashed_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)  # fixed weights: saturated samples would make the clamp below matter
    actor = SquashedGaussianActor(3, 2, (8,), "relu")
    obs = torch.randn(64, 3)
    gen = torch.Generator().manual_seed(0)
    actions, logp = actor.sample(obs, gen)
    mean, log_std = actor(obs)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    safe = actions.clamp(-1 + 1e-6, 1 - 1e-6)
    assert torch.allclose(logp, dist.log_prob(safe).sum(-1), atol=1e-3)


@pytest.mark.parametrize("algo_type", [SAC, TD3])
def test_continuous_algorithms_learn_the_continuous_probe(algo_type):
    config_type = SACConfig if algo_type is SAC else TD3Config
    config = config_type(learning_rate=3e-3, learning_starts=64, batch_size=64,
                         gradient_steps=4, buffer_size=4096, **SMALL)  # fmt: skip
    trainer = _trainer("probe-continuous-v1", algo_type, config, 8, 1, 1600)
    trainer.train()
    trainer.close()
    assert trainer.episodes.mean_return(100) > 0.85
    targets = torch.linspace(-0.9, 0.9, 7).unsqueeze(-1)
    greedy = trainer.algo.act(targets, None, {}, deterministic=True).actions
    assert torch.allclose(greedy, targets, atol=0.2)


def test_td3_and_sac_scale_actions_to_the_box():
    low, high = np.array([0.0, -5.0], np.float32), np.array([1.0, 5.0], np.float32)
    space = spaces.Box(low, high, dtype=np.float32)
    for algo_type, config in ((SAC, SACConfig(**SMALL)), (TD3, TD3Config(**SMALL))):
        algo = algo_type.build(config, spaces.Box(-1, 1, (3,)), space, PolicyConfig())
        algo._warm = True
        actions = algo.act(torch.randn(256, 3) * 10, None, {}).actions
        assert bool((actions[:, 0] >= 0).all() and (actions[:, 0] <= 1).all())
        assert bool((actions[:, 1].abs() <= 5).all()) and float(actions[:, 1].std()) > 0.1


def test_dqn_with_hindsight_relabelling_learns_bit_flipping():
    config = DQNConfig(learning_rate=1e-3, gamma=0.95, learning_starts=256, batch_size=128,
                       gradient_steps=4, target_update_interval=50, exploration_fraction=0.2,
                       exploration_final_eps=0.02, her_strategy="future",
                       hidden_sizes=(64, 64))  # fmt: skip
    trainer = _trainer("bitflip-v1", DQN, config, 4, 1, 2400, n=6)
    trainer.train()
    trainer.close()
    successes = [r > -6 for r in list(trainer.episode_returns)[-50:]]
    assert np.mean(successes) > 0.9
    assert trainer.replay.relabeler is not None


def test_sac_with_hindsight_relabelling_runs_on_pointgoal():
    config = SACConfig(learning_starts=32, batch_size=32, her_strategy="final", **SMALL)
    trainer = _trainer("pointgoal-v1", SAC, config, 2, 8, 128)
    trainer.train()
    trainer.close()
    batch = trainer.replay.sample(64)
    layout = trainer.envs[0].goal_layout
    relabelled = (
        batch["observations"][:, layout.desired_goal]
        == batch["next_observations"][:, layout.desired_goal]
    )
    assert bool(relabelled.all()) and math.isfinite(batch["rewards"].sum().item())


def test_her_needs_a_goal_env():
    config = DQNConfig(her_strategy="future", **SMALL)
    with pytest.raises(APIUsageError, match="goal env"):
        _trainer("probe-observation-v1", DQN, config, 2, 1, 10)


@pytest.mark.parametrize("algo_type", [DQN, SAC, TD3])
def test_resume_is_bitwise_identical_with_the_replay_ring(algo_type):
    env_id = "probe-observation-v1" if algo_type is DQN else "probe-continuous-v1"
    config_type = {DQN: DQNConfig, SAC: SACConfig, TD3: TD3Config}[algo_type]
    extra = {"n_step": 2} if algo_type is DQN else {"prioritized": True}
    config = config_type(learning_starts=16, batch_size=16, gradient_steps=2, **SMALL, **extra)

    def run(epochs, state=None):
        torch.manual_seed(0)
        trainer = _trainer(env_id, algo_type, config, 4, 4, 10_000)
        if state is not None:
            trainer.load_state_dict(state)
        for _ in range(epochs):
            trainer.train_epoch()
        trainer.close()
        return trainer

    straight = run(6)
    half = run(3)
    resumed = run(3, half.state_dict())
    for name, module in straight.algo.modules().items():
        other = resumed.algo.modules()[name].state_dict()
        assert all(torch.equal(v, other[k]) for k, v in module.state_dict().items()), name
