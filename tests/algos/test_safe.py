"""PPO-Lagrangian and CPO: they keep a cost budget PPO ignores, resume exactly, refuse bad input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from fugu.algos.cpo import CPO, CPOConfig
from fugu.algos.ppo import PPO, PPOConfig
from fugu.algos.ppo_lag import PPOLag, PPOLagConfig
from fugu.algos.registry import get_algorithm
from fugu.cli.main import main
from fugu.core.env import PufferEnv
from fugu.core.errors import APIUsageError
from fugu.core.schema import COSTS
from fugu.models import PolicyConfig, make_policy
from fugu.train.config import TrainConfig
from fugu.train.loop import Trainer

EPISODE = 10


class CostProbe(PufferEnv):
    """Each step: action 0 pays reward 1 and cost 1, action 1 reward 0.4 and cost 0; episodes
    are truncated after 10 steps. Unconstrained, the best return (10) costs 10 per episode."""

    def __init__(self, num_envs: int = 16) -> None:
        super().__init__(
            spaces.Box(0.0, 1.0, (2,), np.float32), spaces.Discrete(2), num_envs,
            extra_fields=(COSTS,),
        )  # fmt: skip
        self.t = np.zeros(num_envs, np.int64)

    def get_state(self) -> dict[str, Any]:
        return {"t": self.t.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.t[:] = state["t"]
        self._observe()

    def _observe(self) -> None:
        self.observations[:, 0] = self.t / EPISODE
        self.observations[:, 1] = 1.0

    def reset(self, seed: Any = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        self.t[:] = 0
        self._observe()
        self.costs[:] = 0.0
        return self.observations, []

    def step(self, actions: np.ndarray) -> Any:
        fast = np.asarray(actions).reshape(-1) == 0
        self.rewards[:] = np.where(fast, 1.0, 0.4)
        self.costs[:] = fast.astype(np.float32)
        self.t += 1
        done = self.t >= EPISODE
        self.terminals[:] = False
        self.truncations[:] = done
        self._observe()
        self.final_observations[done] = self.observations[done]
        self.t[done] = 0
        self._observe()
        return self.observations, self.rewards, self.terminals, self.truncations, []


def _train(algo: Any, epochs: int) -> Trainer:
    trainer = Trainer(CostProbe(), algo, TrainConfig(num_steps=32, total_timesteps=10**9))
    for _ in range(epochs):
        trainer.train_epoch()
    return trainer


def _space() -> tuple[spaces.Box, spaces.Discrete]:
    return spaces.Box(0.0, 1.0, (2,), np.float32), spaces.Discrete(2)


def _final_cost(trainer: Trainer) -> float:
    assert trainer.episode_costs is not None
    return float(np.mean(list(trainer.episode_costs.returns)[-32:]))


def test_ppo_lag_keeps_the_cost_limit_that_ppo_exceeds() -> None:
    obs, act = _space()
    common = {"learning_rate": 3e-3, "ent_coef": 0.0, "lr_schedule": "constant"}
    torch.manual_seed(0)
    ppo = PPO(make_policy(obs, act), PPOConfig(**common))
    torch.manual_seed(0)
    lag_config = PPOLagConfig(**common, cost_limit=2.0, pid_kp=1.0, pid_ki=0.05, cost_window=16)
    lag = PPOLag(make_policy(obs, act), lag_config)
    ppo_trainer, lag_trainer = _train(ppo, 40), _train(lag, 40)
    ppo_cost, lag_cost = _final_cost(ppo_trainer), _final_cost(lag_trainer)
    assert ppo_cost > 8.0  # PPO takes the costly reward
    assert lag_cost < 0.5 * ppo_cost and lag_cost < 4.0
    assert lag.multiplier.value > 0.0
    metrics = lag_trainer.train_epoch()
    assert "env/cost" in metrics and metrics["train/lagrange_multiplier"] >= 0.0


def test_cpo_lowers_the_cost_of_a_costly_policy() -> None:
    obs, act = _space()
    torch.manual_seed(0)
    cpo = CPO.build(CPOConfig(cost_limit=2.0, update_epochs=2), obs, act, PolicyConfig())
    trainer = Trainer(CostProbe(), cpo, TrainConfig(num_steps=32, total_timesteps=10**9))
    costs = [trainer.train_epoch()["env/cost"] for _ in range(20)]
    assert np.mean(costs[-3:]) < costs[0] - 1.0  # the random start costs ~5 per episode
    metrics = trainer.train_epoch()
    assert metrics["train/cpo_case"] in (0.0, 1.0, 2.0, 3.0, 4.0)
    assert metrics["loss/kl"] <= cpo.config.max_kl + 1e-6


@pytest.mark.parametrize("name", ["ppo_lag", "cpo"])
def test_resume_equals_an_uninterrupted_run(name: str) -> None:
    algo_type = get_algorithm(name)
    obs, act = _space()
    config = algo_type.config_type(update_epochs=1, cost_window=4)

    def build() -> Any:
        torch.manual_seed(3)
        return algo_type.build(config, obs, act, PolicyConfig(hidden_size=16))

    reference = _train(build(), 3)
    saved = _train(build(), 2)
    state = saved.state_dict()
    resumed = Trainer(CostProbe(), build(), TrainConfig(num_steps=32, total_timesteps=10**9))
    resumed.load_state_dict(state)
    resumed.train_epoch()
    for key, module in reference.algo.modules().items():
        for a, b in zip(
            module.state_dict().values(), resumed.algo.modules()[key].state_dict().values()
        ):
            assert torch.equal(a, b), key
    assert (
        reference.algo.state_dict()["cost_critic"]["recent"]
        == (resumed.algo.state_dict()["cost_critic"]["recent"])
    )
    if name == "ppo_lag":
        assert reference.algo.multiplier.value == resumed.algo.multiplier.value


@pytest.mark.parametrize("algo_type", [PPOLag, CPO])
def test_an_env_without_costs_is_refused(algo_type: Any) -> None:
    obs, act = _space()
    algo = algo_type.build(algo_type.config_type(), obs, act, PolicyConfig())
    with pytest.raises(APIUsageError, match="declares the 'costs' field"):
        algo.storage_fields({})


def test_cpo_refuses_a_shared_critic_and_bad_configs() -> None:
    obs, act = _space()
    with pytest.raises(APIUsageError, match="separate_critic"):
        CPO(make_policy(obs, act, PolicyConfig()))
    with pytest.raises(APIUsageError, match="LSTM"):
        CPO.build(CPOConfig(), obs, act, PolicyConfig(kind="lstm"))
    with pytest.raises(APIUsageError, match="max_kl"):
        CPOConfig(max_kl=0.0)
    with pytest.raises(APIUsageError, match="lagrangian"):
        PPOLagConfig(lagrangian="pi")


def test_cli_trains_ppo_lag_on_hazard_nav(tmp_path: Any) -> None:
    run = tmp_path / "run"
    code = main(
        [
            *["train", "hazard-nav-v1", "--algo", "ppo_lag", "--run-dir", str(run), "--quiet"],
            *["--env.num-envs", "4", "--train.num-steps", "64", "--train.total-timesteps", "1024"],
            *["--ppo_lag.update-epochs", "1", "--ppo_lag.cost-limit", "10"],
            *["--ppo_lag.lagrangian", "plain"],
        ]
    )
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert config["ppo_lag"]["cost_limit"] == 10.0 and config["train"]["algo"] == "ppo_lag"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*rows)
    assert {"env/cost", "train/lagrange_multiplier", "loss/cost_value"} <= logged
