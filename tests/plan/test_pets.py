"""PETS: the ensemble fits a known function; the agent collects, refits, saves and loads."""

from __future__ import annotations

import numpy as np
import torch

from fugu.envs.pendulum import Pendulum
from fugu.plan import PETSAgent, PETSModel, make_planner


def _toy(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    nxt = obs + np.stack([0.3 * np.sin(obs[:, 1]), 0.2 * act[:, 0]], axis=1)
    rew = -(obs**2).sum(axis=1)
    return obs, act, nxt.astype(np.float32), rew.astype(np.float32)


def test_ensemble_fits_a_known_function() -> None:
    torch.manual_seed(0)
    model = PETSModel(2, 1, members=3, hidden=32, seed=0)
    obs, act, nxt, rew = _toy(512, 0)
    first = model.fit(obs, act, nxt, rew, steps=10)
    last = model.fit(obs, act, nxt, rew, steps=250)
    assert last < first
    t_obs, t_act, t_nxt, t_rew = _toy(200, 1)
    o = torch.as_tensor(t_obs).expand(3, -1, -1)
    a = torch.as_tensor(t_act).expand(3, -1, -1)
    _, mean, reward = model.predict(o, a)
    delta_err = (mean - torch.as_tensor(t_nxt)).abs().mean().item()
    baseline = np.abs(t_nxt - t_obs).mean()  # predicting "no change"
    assert delta_err < 0.25 * baseline
    reward_err = (reward.mean(0) - torch.as_tensor(t_rew)).abs().mean().item()
    spread = np.abs(t_rew - t_rew.mean()).mean()
    assert reward_err < 0.7 * spread, (reward_err, spread, delta_err, baseline)


def test_agent_collects_refits_and_round_trips() -> None:
    env = Pendulum(num_envs=1, seed=0)
    env.reset()
    planner = make_planner("cem", [-2.0], [2.0], 5, population=16, iterations=2, seed=0)
    model = PETSModel(3, 1, members=2, hidden=16, seed=0)
    agent = PETSAgent(env, planner, model, warmup=40, train_every=30, fit_steps=20, seed=0)
    agent.learn(100)
    assert agent.steps == 100 and len(agent.replay) == 100 and agent.fits == 3
    state = agent.state_dict()
    other_model = PETSModel(3, 1, members=2, hidden=16, seed=5)
    other = PETSAgent(env, planner, other_model, seed=5)
    other.load_state_dict(state)
    x = torch.zeros(2, 4, 3)
    a = torch.zeros(2, 4, 1)
    assert torch.equal(agent.model.predict(x, a)[1], other.model.predict(x, a)[1])
    assert other.steps == 100 and len(other.replay) == 100
