"""Shields: no unsafe action gets through, interventions are counted, the trainer logs them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fugu
from fugu.core.errors import APIUsageError
from fugu.safety import (
    PredicateSpec,
    SafetyAutomaton,
    ShieldConfig,
    ShieldedVecEnv,
    make_spec,
    wrap_envs,
)
from fugu.safety.water_tank import water_tank_spec


def _tank(mode: str, num_envs: int = 8, seed: int = 0, **kwargs: int) -> ShieldedVecEnv:
    env = fugu.make("water-tank-v1", num_envs=num_envs, seed=seed, **kwargs)
    return ShieldedVecEnv(env, water_tank_spec(**kwargs), mode)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    mode=st.sampled_from(["preemptive", "postposed"]),
    capacity=st.integers(20, 60),
    min_switch_steps=st.integers(1, 4),
    bias=st.floats(0.0, 1.0),
)
def test_a_shield_never_lets_an_unsafe_action_through(
    seed: int, mode: str, capacity: int, min_switch_steps: int, bias: float
) -> None:
    kwargs = {"capacity": capacity, "min_switch_steps": min_switch_steps, "start_spread": 5}
    env = _tank(mode, seed=seed, **kwargs)
    obs, _ = env.reset()
    rng = np.random.default_rng(seed)
    spec = env.spec
    for _ in range(300):
        allowed = spec.allowed(obs)
        actions = (rng.random(8) < bias).astype(np.int32)  # ignores any mask
        env.step(actions)
        sent = env.env.actions.astype(np.int64)
        assert allowed[np.arange(8), sent].all()  # what the env received was safe
        assert (env.costs == 0).all()  # and the tank never overflowed nor ran dry
    metrics = env.pop_metrics()
    assert metrics["safety/violations_total"] == 0.0


def test_interventions_are_counted_exactly() -> None:
    env = _tank("postposed", num_envs=4)
    obs, _ = env.reset()
    replaced = 0
    for _ in range(400):  # always keep the valve shut: the shield must open it in time
        allowed = env.spec.allowed(obs)
        replaced += int((~allowed[:, 0]).sum())
        env.step(np.zeros(4, dtype=np.int32))
        assert (env.env.actions[~allowed[:, 0]] == 1).all()
    metrics = env.pop_metrics()
    assert replaced > 0
    assert metrics["safety/interventions"] == replaced == metrics["safety/unsafe_actions"]
    assert metrics["safety/violations"] == 0.0
    assert env.pop_metrics()["safety/interventions"] == 0.0  # counts are per period
    assert env.interventions_total == replaced


def test_monitor_counts_but_changes_nothing() -> None:
    env = _tank("monitor", num_envs=4)
    env.reset()
    for _ in range(400):
        env.step(np.zeros(4, dtype=np.int32))
        assert (env.env.actions == 0).all()
    metrics = env.pop_metrics()
    assert metrics["safety/unsafe_actions"] > 0 and metrics["safety/interventions"] == 0
    assert metrics["safety/violations"] > 0  # never opening overflows the tanks


def test_preemptive_masks_reach_the_extras_and_the_contract_holds() -> None:
    env = _tank("preemptive", num_envs=3)
    assert "action_masks" in env.extra_fields
    obs, _ = env.reset()
    assert np.array_equal(env.extras["action_masks"], env.spec.allowed(obs))
    fugu.check_env(lambda: _tank("preemptive", num_envs=3), num_steps=200)
    fugu.check_env(lambda: _tank("postposed", num_envs=3), num_steps=200)


def test_a_safety_automaton_shield_forbids_two_ones_in_a_row() -> None:
    delta = np.array([[[0, 1]], [[0, 2]], [[2, 2]]])
    spec = SafetyAutomaton(delta, unsafe=np.array([False, False, True]))
    env = ShieldedVecEnv(fugu.make("cartpole-v1", num_envs=4, seed=0), spec, "postposed")
    env.reset()
    previous = np.zeros(4, dtype=np.int64)
    for _ in range(200):
        env.step(np.ones(4, dtype=np.int32))
        sent = env.env.actions.astype(np.int64)
        ended = env.terminals | env.truncations
        assert not ((previous == 1) & (sent == 1)).any()
        previous = np.where(ended, 0, sent)
    assert env.pop_metrics()["safety/interventions"] > 0


def test_double_buffered_batches_are_shielded() -> None:
    inner = fugu.make("water-tank-v1", num_envs=8, seed=0, batch_size=4)
    env = ShieldedVecEnv(inner, water_tank_spec(), "preemptive")
    env.async_reset(0)
    for _ in range(300):
        batch = env.recv()
        masks = batch.extras["action_masks"]
        assert masks.shape == (4, 2) and masks.any(axis=1).all()
        env.send(np.zeros(4, dtype=np.int32))  # ignores the masks: the shield replaces
        assert (inner.costs == 0).all()
    assert env.pop_metrics()["safety/unsafe_actions"] > 0
    env.close()


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(APIUsageError, match=r"shield\.mode"):
        ShieldConfig(mode="sometimes")
    with pytest.raises(APIUsageError, match="no built-in safety spec"):
        make_spec("auto", "cartpole-v1")
    with pytest.raises(APIUsageError, match="Discrete"):
        ShieldedVecEnv(fugu.make("pendulum-v1"), PredicateSpec(lambda o, a: a == 0, 2))
    with pytest.raises(APIUsageError, match="actions"):
        ShieldedVecEnv(fugu.make("water-tank-v1"), PredicateSpec(lambda o, a: a == 0, 3))
    assert wrap_envs(ShieldConfig(), ["env"], "water-tank-v1") == ["env"]


def test_a_property_file_becomes_a_shield(tmp_path) -> None:
    path = tmp_path / "tank.toml"
    path.write_text(
        '[[property]]\nkind = "never_action"\nlow = [0.9, 0, 0]\nhigh = [1, 1, 1]\naction = 0\n'
    )
    spec = make_spec(f"properties:{path}", "water-tank-v1", num_actions=2)
    env = ShieldedVecEnv(fugu.make("water-tank-v1", num_envs=2, seed=0), spec, "postposed")
    env.reset()
    for _ in range(300):
        high = env.observations[:, 0].astype(np.float64) >= 0.9
        env.step(np.zeros(2, dtype=np.int32))
        assert (env.env.actions[high] == 1).all()


def test_training_with_a_shield_logs_interventions_and_never_violates(tmp_path) -> None:
    from fugu.train.build import build_trainer
    from fugu.train.experiment import ExperimentConfig

    config = ExperimentConfig.from_dict(
        {
            "env": {
                "id": "water-tank-v1",
                "num_envs": 8,
                "kwargs": {"capacity": 16, "start_spread": 3},
            },
            "train": {"total_timesteps": 1024, "num_steps": 64, "seed": 0},
            "ppo": {"update_epochs": 1},
            "shield": {"mode": "preemptive"},
        }
    )
    trainer = build_trainer(config)
    seen = []
    while not trainer.done:
        metrics = trainer.train_epoch()
        seen.append(metrics)
    trainer.close()
    assert all("safety/interventions" in m for m in seen)
    assert sum(m["safety/interventions"] for m in seen) > 0
    assert sum(m["safety/violations"] for m in seen) == 0.0
