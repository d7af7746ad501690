"""MAPPO / IPPO: team state, central critic on or off, learning, roles, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos.mappo import IPPO, MAPPO, IPPOConfig, MAPPOConfig, team_state
from fugu.algos.registry import get_algorithm
from fugu.cli.main import main
from fugu.core.env import PufferEnv
from fugu.core.errors import APIUsageError
from fugu.envs.probes import ProbeMultiagent
from fugu.models import PolicyConfig
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer

POLICY = PolicyConfig(hidden_size=16)


class CoopProbe(PufferEnv):
    """Two agents per copy each see a private bit; both earn the team's score
    ``mean_k [a_k == bit_k]`` (one-step episodes): optimal return 1 per agent."""

    def __init__(self, num_envs: int = 8, seed: int = 0) -> None:
        super().__init__(spaces.Box(0, 1, (2,), np.float32), spaces.Discrete(2), 2 * num_envs)
        self.agents_per_env = 2
        self.rng = np.random.default_rng(seed)
        self.bits = np.zeros(2 * num_envs, np.int64)

    def _draw(self) -> None:
        self.bits[:] = self.rng.integers(0, 2, len(self.bits))
        self.observations[:, 0] = self.bits
        self.observations[:, 1] = np.arange(len(self.bits)) % 2

    def reset(self, seed: Any = None) -> tuple[np.ndarray, list]:
        if seed is not None:
            self.rng = np.random.default_rng(int(seed))
        self._draw()
        return self.observations, []

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        hit = (np.asarray(actions).reshape(-1) == self.bits).astype(np.float32)
        self.rewards[:] = np.repeat(hit.reshape(-1, 2).mean(1), 2)
        self.terminals[:] = True
        self.final_observations[:] = self.observations
        self._draw()
        infos = [{"episode_return": float(self.rewards.mean()), "episode_length": 1.0,
                  "num_episodes": len(self.rewards)}]  # fmt: skip
        return self.observations, self.rewards, self.terminals, self.truncations, infos


def _train(env: PufferEnv, algo: MAPPO, steps: int, num_steps: int = 4) -> Trainer:
    config = TrainConfig(num_steps=num_steps, total_timesteps=steps, seed=0)
    trainer = Trainer(env, algo, config)
    trainer.train()
    return trainer


def test_team_state_concatenates_teams_and_zeroes_dead_rows() -> None:
    obs = torch.arange(8.0).view(4, 2)
    live = torch.tensor([True, False, True, True])
    state = team_state(obs, 2, agent_id=False, live=live)
    assert state.tolist()[0] == [0.0, 1.0, 0.0, 0.0] == state.tolist()[1]
    assert state.tolist()[2] == [4.0, 5.0, 6.0, 7.0]
    with pytest.raises(APIUsageError, match="teams of 3"):
        team_state(obs, 3, agent_id=True)


def test_ippo_flag_removes_the_central_critic() -> None:
    obs_space, act_space = spaces.Box(-1, 1, (3,)), spaces.Discrete(2)
    torch.manual_seed(0)
    mappo = MAPPO.build(MAPPOConfig(team_size=2), obs_space, act_space, POLICY)
    ippo = MAPPO.build(MAPPOConfig(team_size=2, central_critic=False), obs_space, act_space, POLICY)
    assert mappo.critic_input_size == 2 * 3 + 2 and ippo.critic_input_size == 3 + 2
    obs = torch.zeros(4, 3)
    moved = obs.clone()
    moved[1] = 1.0  # agent 1 of team 0 moves: only a central critic of agent 0 notices
    for algo, changes in ((mappo, True), (ippo, False)):
        before, after = algo.bootstrap(obs, None), algo.bootstrap(moved, None)
        assert bool(before[0] != after[0]) is changes
        assert before[2] == after[2]  # the other team is untouched either way
    assert get_algorithm("ippo") is IPPO and IPPOConfig().central_critic is False
    with pytest.raises(APIUsageError, match="team_size"):
        MAPPO.build(MAPPOConfig(), obs_space, act_space, POLICY)


@pytest.mark.parametrize("central", [True, False])
def test_learns_a_cooperative_probe(central: bool) -> None:
    torch.manual_seed(0)
    config = MAPPOConfig(team_size=2, central_critic=central, learning_rate=1e-2,
                         num_minibatches=1, update_epochs=2)  # fmt: skip
    algo = MAPPO.build(config, spaces.Box(0, 1, (2,), np.float32), spaces.Discrete(2), POLICY)
    trainer = _train(CoopProbe(num_envs=16), algo, steps=3_000)
    recent = list(trainer.episode_returns)[-200:]
    assert np.mean(recent) > 0.9


def test_per_role_actors_learn_their_roles() -> None:
    torch.manual_seed(0)
    config = MAPPOConfig(team_size=2, share_actor=False, learning_rate=1e-2,
                         num_minibatches=1, update_epochs=2)  # fmt: skip
    env = ProbeMultiagent(num_envs=16, agents=2, seed=0)  # agent k should play k % 2
    algo = MAPPO.build(config, env.single_observation_space, env.single_action_space, POLICY)
    assert len(algo.actors) == 2
    trainer = Trainer(env, algo, TrainConfig(num_steps=4, total_timesteps=2_000, seed=0))
    metrics: dict[str, float] = {}
    while not trainer.done:
        metrics = trainer.train_epoch()
    assert metrics["train/role_0_reward"] > 0.8 and metrics["train/role_1_reward"] > 0.8
    out = algo.act(torch.eye(2), None, {}, deterministic=True)
    assert out.actions.tolist() == [0, 1]


def _params(algo: MAPPO) -> list[torch.Tensor]:
    return [p.detach().clone() for m in algo.modules().values() for p in m.state_dict().values()]


def test_seeded_runs_are_identical() -> None:
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        algo = MAPPO.build(MAPPOConfig(team_size=2, seed=3), spaces.Box(0, 1, (2,), np.float32),
                           spaces.Discrete(2), POLICY)  # fmt: skip
        _train(CoopProbe(num_envs=4), algo, steps=256)
        runs.append(_params(algo))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_cli_trains_simple_spread_resumes_and_evaluates(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        "train", "simple-spread-v1", "--algo", "mappo", "--env.num-envs", "8",
        "--train.total-timesteps", "2400", "--train.num-steps", "25", "--run-dir", str(run),
        "--logging.tensorboard", "false", "--quiet",
    ]  # fmt: skip
    assert main([*args, "--epochs", "1"]) == 0
    assert main(args) == 0  # resumes the run to the end
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [m["train/global_step"] for m in lines if "train/global_step" in m]
    assert steps[-1] == 2400 and len(set(steps)) == len(steps)
    assert main(["eval", "simple-spread-v1", "--checkpoint", str(run), "--episodes", "4"]) == 0


def test_two_role_pettingzoo_env_trains_an_actor_per_role() -> None:
    simple_tag_v3 = pytest.importorskip("mpe2.simple_tag_v3")
    from fugu.bridges.pettingzoo import PettingZooPufferEnv

    env = PettingZooPufferEnv(simple_tag_v3.parallel_env(max_cycles=10))
    assert env.roles.tolist() == [0, 0, 0, 1]  # three predators, one prey
    config = MAPPOConfig(team_size=4, share_actor=False, num_roles=2, num_minibatches=1)
    torch.manual_seed(0)
    algo = MAPPO.build(config, env.single_observation_space, env.single_action_space, POLICY)
    trainer = Trainer(env, algo, TrainConfig(num_steps=10, total_timesteps=80, seed=0))
    metrics = trainer.train_epoch()
    trainer.close()
    # predators (role 0) and prey (role 1) learn with their own actors and are scored apart
    assert len(algo.actors) == 2 and "roles" in trainer.collector.storage.fields
    assert "train/role_0_reward" in metrics and "train/role_1_reward" in metrics


class DyingTeam(PufferEnv):
    """Two agents; agent 1 dies on the first step of every 3-step episode (its row is masked,
    zero, rewardless for the rest of it); both earn 1 for action 1."""

    def __init__(self) -> None:
        super().__init__(spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(2), 2)
        self.t = 0

    def reset(self, seed: Any = None) -> tuple[np.ndarray, list]:
        self.t = 0
        self.masks[:] = True
        self.observations[:] = [[1.0, 0.0], [0.0, 1.0]]
        return self.observations, []

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        acted = self.masks.copy()
        self.t += 1
        self.rewards[:] = (np.asarray(actions) == 1) * acted
        self.terminals[:] = False
        self.truncations[:] = False
        if self.t == 1:  # agent 1 dies
            self.terminals[1] = True
            self.final_observations[1] = self.observations[1]
            self.masks[1] = False
            self.observations[1] = 0.0
        if self.t == 3:
            self.truncations[0] = True
            self.final_observations[0] = self.observations[0]
            self.reset()
        return self.observations, self.rewards, self.terminals, self.truncations, []


def test_dead_rows_are_masked_out_of_learning() -> None:
    from fugu.core.checker import check_env

    check_env(DyingTeam, num_steps=12)  # the env itself follows the masked-row rule
    torch.manual_seed(0)
    config = MAPPOConfig(team_size=2, learning_rate=1e-2, num_minibatches=1)
    algo = MAPPO.build(config, spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(2), POLICY)
    trainer = _train(DyingTeam(), algo, steps=600, num_steps=6)
    batch = trainer.collector.storage.batch()
    assert not bool(batch["masks"].all())  # dead steps were stored, masked
    out = algo.act(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), None, {}, deterministic=True)
    assert out.actions.tolist() == [1, 1]
