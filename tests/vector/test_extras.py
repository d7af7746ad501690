"""Declared extra fields (costs, action masks) arrive, with the env's values, through every
backend: in ``env.extras`` and in every ``recv()`` batch's ``extras``."""

from __future__ import annotations

import numpy as np
import pytest

import fugu.vector
from fugu.bridges.gymnasium import GymnasiumEnvCreator
from fugu.core.emulation import GymnasiumPufferEnv
from fugu.core.schema import COSTS, action_masks_field
from fugu.envs.connect4 import Connect4
from fugu.envs.hazard_nav import HazardNav
from fugu.vector import Multiprocessing

NUM_ENVS, SEED, ROUNDS = 4, 7, 40

BACKENDS = [
    pytest.param({"backend": "serial"}, id="serial"),
    pytest.param({"backend": "multiprocessing", "num_workers": 2, "context": "fork"}, id="mp"),
    pytest.param({"backend": "native"}, id="native"),
]


def _hazard_actions() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (ROUNDS, NUM_ENVS, 2)).astype(np.float32)


def _connect4_actions() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 7, (ROUNDS, NUM_ENVS)).astype(np.int32)


def _reference(env, actions: np.ndarray, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(observations, extras[name])`` after the reset and after every round of ``actions``."""
    env.reset(seed=SEED)
    out = [(env.observations.copy(), env.extras[name].copy())]
    for round_actions in actions:
        env.step(round_actions)
        out.append((env.observations.copy(), env.extras[name].copy()))
    env.close()
    return out


CASES = {
    "costs": ("hazard-nav-v1", {}, HazardNav, _hazard_actions),
    "action_masks": ("connect4-v1", {"opponent": "random", "illegal_move": "random"}, Connect4,
                     _connect4_actions),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("kwargs", BACKENDS)
def test_extras_match_a_native_env_stepped_synchronously(name: str, kwargs: dict) -> None:
    env_id, env_kwargs, cls, make_actions = CASES[name]
    actions = make_actions()
    reference = _reference(cls(num_envs=NUM_ENVS, **env_kwargs), actions, name)
    env = fugu.vector.make(env_id, NUM_ENVS, seed=SEED, env_kwargs=env_kwargs, **kwargs)
    try:
        field = env.extra_fields[name]
        assert field == (COSTS if name == "costs" else action_masks_field(7))
        assert env.extras[name].shape == (NUM_ENVS, *field.shape)
        assert getattr(env, name) is env.extras[name]
        env.reset()
        np.testing.assert_array_equal(env.observations, reference[0][0])
        np.testing.assert_array_equal(env.extras[name], reference[0][1])
        varied = False
        for k, round_actions in enumerate(actions, start=1):
            env.step(round_actions)
            np.testing.assert_array_equal(env.observations, reference[k][0])
            np.testing.assert_array_equal(env.extras[name], reference[k][1])
            varied |= bool(np.any(env.extras[name] != reference[0][1]))
        assert varied  # the field really changes over the run (costs paid, columns filled)
    finally:
        env.close()


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("kwargs", BACKENDS)
def test_recv_batches_carry_their_rows_of_the_extras(name: str, kwargs: dict) -> None:
    env_id, env_kwargs, cls, make_actions = CASES[name]
    actions = make_actions()
    reference = _reference(cls(num_envs=NUM_ENVS, **env_kwargs), actions, name)
    env = fugu.vector.make(
        env_id, NUM_ENVS, seed=SEED, batch_size=2, env_kwargs=env_kwargs, **kwargs
    )
    try:
        env.async_reset()
        rounds = [0] * NUM_ENVS
        for _ in range(2 * ROUNDS):
            batch = env.recv()
            ids = batch.env_ids
            assert list(batch.extras) == [name]
            extra = batch.extras[name]
            assert np.shares_memory(extra, env.extras[name])  # a view, not a copy
            (k,) = {rounds[i] for i in ids}
            np.testing.assert_array_equal(extra, reference[k][1][ids])
            np.testing.assert_array_equal(batch.observations, reference[k][0][ids])
            env.send(actions[k][ids])
            for i in ids:
                rounds[i] += 1
    finally:
        env.close()


def test_connect4_self_play_masks_match_the_board_through_multiprocessing() -> None:
    env = Multiprocessing(
        fugu.vector.EnvFactory("connect4-v1"), 4, num_workers=2, batch_size=2, context="fork"
    )
    rng = np.random.default_rng(0)
    try:
        env.async_reset(3)
        full_columns = 0
        for _ in range(200):
            batch = env.recv()
            masks = batch.extras["action_masks"]
            np.testing.assert_array_equal(masks, batch.observations[:, 84:91] > 0.5)
            full_columns += int((~masks).sum())
            legal = [rng.choice(np.flatnonzero(row)) for row in masks]
            env.send(np.array(legal, np.int32))
        assert full_columns > 0
    finally:
        env.close()


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_gymnasium_action_masks_cross_multiprocessing(context: str) -> None:
    creator = GymnasiumEnvCreator("Taxi-v4", action_masks=True)
    env = Multiprocessing(creator, 2, num_workers=2, seed=SEED, context=context)
    refs = [GymnasiumPufferEnv.from_id("Taxi-v4", action_masks=True) for _ in range(2)]
    rng = np.random.default_rng(0)
    try:
        assert env.extra_fields == {"action_masks": action_masks_field(6)}
        env.reset()
        for i, ref in enumerate(refs):
            ref.reset(seed=SEED + i)
        for _ in range(30):
            expected = np.concatenate([ref.action_masks for ref in refs])
            np.testing.assert_array_equal(env.extras["action_masks"], expected)
            unwrapped = [ref.env.unwrapped for ref in refs]
            truth = np.stack([u.action_mask(u.s) for u in unwrapped]).astype(bool)
            np.testing.assert_array_equal(expected, truth)
            actions = rng.integers(0, 6, 2).astype(np.int32)
            env.step(actions)
            for i, ref in enumerate(refs):
                ref.step(actions[i : i + 1])
    finally:
        env.close()
        for ref in refs:
            ref.close()
