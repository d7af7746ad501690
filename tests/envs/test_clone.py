"""clone_rows: clones of a native env's row have the same future as the row itself."""

from __future__ import annotations

import numpy as np
import pytest

from fugu.core.errors import APIUsageError
from fugu.envs.cartpole import CartPole
from fugu.envs.cartpole_swingup import CartPoleSwingup
from fugu.envs.clone import clone_rows, make_copies
from fugu.envs.pendulum import Pendulum


@pytest.mark.parametrize("cls", [Pendulum, CartPoleSwingup])
def test_clones_have_identical_futures(cls: type) -> None:
    source = cls(num_envs=3, seed=0)
    source.reset()
    rng = np.random.default_rng(0)
    for _ in range(7):
        source.step(rng.uniform(-1, 1, (3, 1)).astype(np.float32))
    copies = make_copies(cls(num_envs=1), 4)
    clone_rows(source, copies, 2)
    assert np.array_equal(copies.observations, np.repeat(source.observations[2:3], 4, axis=0))
    actions = rng.uniform(-1, 1, (20, 1)).astype(np.float32)
    ours = []
    for a in actions:
        obs, rew, *_ = copies.step(np.repeat(a[None], 4, axis=0))
        ours.append((obs.copy(), rew.copy()))
    for a in actions:
        full = np.zeros((3, 1), np.float32)
        full[2] = a
        obs, rew, *_ = source.step(full)
        o, r = ours.pop(0)
        assert np.array_equal(o, np.repeat(obs[2:3], 4, axis=0))
        assert np.array_equal(r, np.repeat(rew[2:3], 4))


def test_clone_restore_is_repeatable_and_leaves_source_alone() -> None:
    source = Pendulum(num_envs=1, seed=3)
    source.reset()
    before = source.get_state()
    copies = make_copies(source, 2)
    runs = []
    for _ in range(2):
        clone_rows(source, copies, 0)
        for _ in range(10):
            copies.step(np.array([[1.0], [-1.0]], np.float32))
        runs.append(copies.observations.copy())
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0][0], runs[0][1])
    after = source.get_state()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_clone_per_row_mapping_and_errors() -> None:
    source = Pendulum(num_envs=3, seed=0)
    source.reset()
    copies = make_copies(source, 3)
    clone_rows(source, copies, np.array([2, 0, 1]))
    assert np.array_equal(copies.observations, source.observations[[2, 0, 1]])
    with pytest.raises(APIUsageError, match="one class"):
        clone_rows(CartPole(num_envs=1), copies, 0)
    with pytest.raises(APIUsageError, match="rows"):
        clone_rows(source, copies, 5)
