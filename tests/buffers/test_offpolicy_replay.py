"""Replay rings for off-policy learning: sum-tree priorities, n-step returns, hindsight goals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.buffers import HindsightRelabeler, Prioritized, ReplayBuffer, SumTree
from fugu.core.errors import APIUsageError
from fugu.core.schema import Field
from fugu.envs.goals import GoalLayout


def _fields(obs_size: int = 1) -> dict[str, Field]:
    return {
        "observations": Field("observations", (obs_size,)),
        "actions": Field("actions", (), np.int64),
        "rewards": Field("rewards"),
        "terminals": Field("terminals", (), np.bool_),
        "truncations": Field("truncations", (), np.bool_),
    }


def test_sum_tree_finds_the_leaf_of_every_prefix_and_keeps_its_total():
    rng = np.random.default_rng(0)
    tree = SumTree(37)
    p = rng.random(37)
    p[[3, 10]] = 0.0
    tree.update(torch.arange(37), torch.from_numpy(p))
    assert float(tree.total) == pytest.approx(p.sum())
    prefix = rng.random(500) * p.sum()
    expected = np.searchsorted(np.cumsum(p), prefix, side="right")
    assert tree.find(torch.from_numpy(prefix)).tolist() == expected.tolist()
    tree.update(torch.tensor([5, 5]), torch.tensor([2.0, 7.0]))  # the last write wins
    assert float(tree.priorities(torch.tensor([5]))) == 7.0
    assert float(tree.total) == pytest.approx(p.sum() - p[5] + 7.0)
    restored = SumTree(37)
    restored.load_state_dict(tree.state_dict())
    assert torch.equal(restored.tree, tree.tree)


def test_sum_tree_inner_nodes_stay_sums_after_scattered_repeated_updates():
    rng = np.random.default_rng(1)
    tree = SumTree(100)
    leaves = np.zeros(100)
    for _ in range(20):
        idx = rng.integers(0, 100, 17)  # repeats within a call
        values = rng.random(17)
        tree.update(torch.from_numpy(idx), torch.from_numpy(values))
        for i, v in zip(idx, values, strict=True):
            leaves[i] = v
    t = tree.tree.numpy()
    inner = np.arange(1, tree.leaves)
    assert np.allclose(t[inner], t[2 * inner] + t[2 * inner + 1])
    assert np.allclose(t[tree.leaves : tree.leaves + 100], leaves)


def test_prioritized_sampling_follows_priorities_and_weights_correct_it():
    buf = ReplayBuffer(_fields(), 8, seed=0, prioritized=Prioritized(alpha=1.0, beta=1.0))
    buf.add({
        "observations": torch.arange(8.0).unsqueeze(-1), "next_observations": torch.zeros(8, 1),
        "actions": torch.zeros(8, dtype=torch.long), "rewards": torch.zeros(8),
        "terminals": torch.zeros(8, dtype=torch.bool),
        "truncations": torch.zeros(8, dtype=torch.bool),
    })  # fmt: skip
    errors = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 3.0])
    buf.update_priorities(torch.arange(8), errors)
    counts = torch.zeros(8)
    for _ in range(200):
        batch = buf.sample(64)
        counts += torch.bincount(batch.info["indices"], minlength=8)
    share = counts / counts.sum()
    assert share[0] == pytest.approx(0.25, abs=0.03) and share[7] == pytest.approx(0.75, abs=0.03)
    assert float(share[1:7].sum()) < 0.01  # epsilon-sized priorities, practically never drawn
    weights = batch["weights"]
    w0 = weights[batch.info["indices"] == 0]
    w7 = weights[batch.info["indices"] == 7]
    assert torch.allclose(w0, torch.ones_like(w0)) and torch.allclose(
        w7, torch.full_like(w7, 1 / 3)
    )


def _rollout(buf: ReplayBuffer, rows: int, steps: int, episode_lengths: list[int]) -> None:
    """Row r's steps: observation = 100 r + step, reward = step + 1, episodes of fixed length."""
    for t in range(steps):
        obs = torch.tensor([[100.0 * r + t] for r in range(rows)])
        ends = torch.tensor([(t + 1) % episode_lengths[r] == 0 for r in range(rows)])
        buf.add({
            "observations": obs, "next_observations": obs + 1,
            "actions": torch.zeros(rows, dtype=torch.long), "rewards": torch.full((rows,), t + 1.0),
            "terminals": ends & torch.tensor([r == 0 for r in range(rows)]),
            "truncations": ends & torch.tensor([r != 0 for r in range(rows)]),
        })  # fmt: skip


def test_n_step_returns_stop_at_episode_ends_and_the_newest_step():
    gamma = 0.5
    buf = ReplayBuffer(_fields(), 30, seed=0, num_rows=2, n_step=3, gamma=gamma)
    _rollout(buf, rows=2, steps=10, episode_lengths=[4, 5])
    batch = buf.sample(400)
    for i in range(400):
        obs = float(batch["observations"][i, 0])
        row, t = divmod(int(obs), 100)
        length = [4, 5][row]
        end = min((t // length + 1) * length - 1, 9)  # last step of the episode (or stored)
        k = min(3, end - t + 1)
        expected = sum(gamma**j * (t + j + 1) for j in range(k))
        assert float(batch["rewards"][i]) == pytest.approx(expected)
        assert float(batch["discounts"][i]) == pytest.approx(gamma**k)
        assert float(batch["next_observations"][i, 0]) == 100 * row + t + k
        ended = t + k - 1 == (t // length + 1) * length - 1
        assert bool(batch["terminals"][i]) == (ended and row == 0)
        assert bool(batch["truncations"][i]) == (ended and row == 1)


def test_n_step_ring_survives_wrapping_and_checkpoints():
    buf = ReplayBuffer(_fields(), 12, seed=3, num_rows=2, n_step=2, gamma=0.9,
                       prioritized=Prioritized())  # fmt: skip
    _rollout(buf, rows=2, steps=9, episode_lengths=[4, 5])  # 18 steps into 12 slots
    assert len(buf) == 12
    oldest = int(buf.tensors["observations"][:, 0].remainder(100).min())
    assert oldest == 3  # steps 3..8 of each row remain
    copy = ReplayBuffer(_fields(), 12, seed=0, num_rows=2, n_step=2, gamma=0.9,
                        prioritized=Prioritized())  # fmt: skip
    copy.load_state_dict(buf.state_dict())
    a, b = buf.sample(32), copy.sample(32)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a step whose successor was overwritten... is never at the end; t=8 (newest) sums 1 reward
    last = a["observations"][:, 0].remainder(100) == 8
    assert torch.allclose(a["rewards"][last], torch.full((int(last.sum()),), 9.0))


def _goal_reward(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    return np.where(np.abs(achieved - desired).max(-1) < 0.5, 0.0, -1.0)


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_hindsight_goals_come_from_the_same_episode(strategy):
    layout = GoalLayout(observation_size=1, goal_size=1)
    relabeler = HindsightRelabeler(layout.achieved_goal, layout.desired_goal, _goal_reward,
                                   strategy, k=4)  # fmt: skip
    buf = ReplayBuffer(_fields(3), 60, seed=1, num_rows=2, relabeler=relabeler)
    lengths = [3, 5]
    for t in range(12):
        rows = 2
        code = torch.tensor([100.0 * r + t for r in range(rows)])
        obs = torch.stack([code, code, torch.full((rows,), -7.0)], -1)
        nxt = torch.stack([code + 1, code + 1, torch.full((rows,), -7.0)], -1)
        ends = torch.tensor([(t + 1) % lengths[r] == 0 for r in range(rows)])
        buf.add({
            "observations": obs, "next_observations": nxt,
            "actions": torch.zeros(rows, dtype=torch.long), "rewards": torch.full((rows,), -1.0),
            "terminals": torch.zeros(rows, dtype=torch.bool), "truncations": ends,
        })  # fmt: skip
    batch = buf.sample(2000)
    goals = batch["observations"][:, 2]
    relabelled = goals != -7.0
    assert 0.7 < float(relabelled.float().mean()) < 0.9  # k / (k + 1) = 0.8
    assert torch.equal(batch["next_observations"][:, 2], goals)
    for i in relabelled.nonzero().squeeze(-1).tolist():
        row, t = divmod(int(batch["observations"][i, 0]), 100)
        g_row, g_step = divmod(int(goals[i]) - 1, 100)
        first = t // lengths[row] * lengths[row]
        last = min(first + lengths[row] - 1, 11)
        assert g_row == row and first <= g_step <= last
        if strategy == "future":
            assert g_step >= t
        if strategy == "final":
            assert g_step == last
        expected = 0.0 if g_step == t else -1.0
        assert float(batch["rewards"][i]) == expected
    assert bool((batch["rewards"][~relabelled] == -1.0).all())


def test_row_ordered_rings_refuse_what_they_cannot_keep_in_order():
    with pytest.raises(APIUsageError, match="num_rows"):
        ReplayBuffer(_fields(), 10, n_step=3)
    buf = ReplayBuffer(_fields(), 10, num_rows=2, n_step=2)
    assert buf.capacity == 10
    with pytest.raises(APIUsageError, match="one step of all 2 rows"):
        buf.add({name: torch.zeros(3, *t.shape[1:], dtype=t.dtype)
                 for name, t in buf.tensors.items()})  # fmt: skip


def test_prefetched_batches_are_fresh_after_every_add():
    buf = ReplayBuffer(_fields(), 100, seed=0, prefetch=4)
    _rollout(buf, rows=1, steps=10, episode_lengths=[100])
    first = [buf.sample(8) for _ in range(3)]
    assert len({tuple(b.info["indices"].tolist()) for b in first}) == 3  # distinct draws
    assert all(b["observations"].shape == (8, 1) for b in first)
    _rollout(buf, rows=1, steps=1, episode_lengths=[100])  # a new step 0 lands in slot 10
    assert not buf._prefetched
    seen = torch.cat([buf.sample(8).info["indices"] for _ in range(40)])
    assert int(seen.max()) == 10  # the new slot is drawn once added
