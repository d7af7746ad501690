"""water-tank-v1: dynamics, switching times, violations as costs, contract, game agreement."""

from __future__ import annotations

import numpy as np
import pytest

import fugu
from fugu.core.errors import APIUsageError
from fugu.envs.water_tank import WaterTank
from fugu.safety.water_tank import water_tank_game


def _set(env: WaterTank, row: int, level: int, valve: int, held: int) -> None:
    env.state["level"][row], env.state["valve"][row], env.state["held"][row] = level, valve, held


def test_passes_the_env_contract() -> None:
    fugu.check_env(lambda: fugu.make("water-tank-v1", num_envs=3), num_steps=300)


def test_seeded_runs_are_identical_and_autoreset_is_same_step() -> None:
    runs = []
    for _ in range(2):
        env = WaterTank(num_envs=4, seed=7, max_steps=30)
        obs, _ = env.reset()
        rng = np.random.default_rng(0)
        trace = [obs.copy()]
        for _ in range(90):
            obs, _, terminals, truncations, _ = env.step(rng.integers(0, 2, 4, dtype=np.int32))
            trace.append(obs.copy())
            ended = terminals | truncations
            if ended.any():  # the ended row already shows its next episode's start
                assert (env.state["episode_length"][ended] == 0).all()
                assert (np.abs(obs[ended, 0] - 0.5) <= 0.1 + 1e-6).all()
        runs.append(np.stack(trace))
    assert np.array_equal(runs[0], runs[1])


def test_valve_switch_waits_for_the_minimum_time_and_violations_cost() -> None:
    env = WaterTank(num_envs=2, seed=0, min_switch_steps=3, info_interval=1)
    env.reset()
    _set(env, 0, 50, 0, 1)  # just closed: cannot open for two more steps
    _set(env, 1, 98, 0, 3)  # closed and free to switch, but asked to stay closed
    obs, rewards, terminals, _, infos = env.step(np.array([1, 0], dtype=np.int32))
    assert env.state["valve"][0] == 0 and env.state["held"][0] == 2
    assert 51 <= env.state["level"][0] <= 52 and obs[0, 2] == pytest.approx(2 / 3)
    level = round(float(env.final_observations[1, 0]) * 100) if terminals[1] else None
    assert terminals[1] == (level is not None and level >= 100)
    if terminals[1]:
        assert env.costs[1] == 1.0 and rewards[1] == 0.0
        assert infos[0]["overflow"] == 1.0 and infos[0]["episode_cost"] == 1.0
    assert env.costs[0] == 0.0 and rewards[0] == pytest.approx(env.state["level"][0] / 100)
    env.step(np.array([1, 0], dtype=np.int32))
    env.step(np.array([1, 0], dtype=np.int32))  # held reached 3: the switch happens now
    assert env.state["valve"][0] == 1 and env.state["held"][0] == 1


def test_emptying_the_tank_is_a_violation() -> None:
    env = WaterTank(num_envs=1, seed=0, info_interval=1)
    env.reset()
    _set(env, 0, 1, 1, 3)  # open, 1 unit left: any inflow of 1..2 minus 3 empties it
    _, rewards, terminals, _, infos = env.step(np.array([1], dtype=np.int32))
    assert terminals[0] and env.costs[0] == 1.0 and rewards[0] == 0.0
    assert infos[0]["empty"] == 1.0 and infos[0]["overflow"] == 0.0


def test_the_safety_game_matches_the_env_dynamics() -> None:
    successors, _ = water_tank_game(capacity=20, min_switch_steps=2)
    env = WaterTank(num_envs=64, seed=1, capacity=20, min_switch_steps=2, start_spread=5)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(200):
        level, valve, held = (env.state[k].copy() for k in ("level", "valve", "held"))
        actions = rng.integers(0, 2, 64, dtype=np.int32)
        _, _, terminals, _, _ = env.step(actions)
        after = np.rint(env.final_observations[:, 0] * 20).astype(int)
        after = np.where(terminals, after, env.state["level"])
        states = (level * 2 + valve) * 2 + held - 1
        for i in np.flatnonzero(~env.truncations):
            nxt = successors[states[i], actions[i]]
            levels = nxt // 4
            assert np.clip(after[i], 0, 20) in levels


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(APIUsageError, match="outflow"):
        WaterTank(outflow=2)
    with pytest.raises(APIUsageError, match="min_switch_steps"):
        WaterTank(min_switch_steps=0)
