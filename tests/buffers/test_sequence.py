"""SequenceReplay: timelines with final observations at the seams, contiguous windows, rings."""

from __future__ import annotations

import pytest
import torch

from fugu.buffers.sequence import SequenceReplay
from fugu.core.errors import APIUsageError


def _rollout(start: int, steps: int, rows: int, terminal=(), truncated=()):
    """Observations count up per row (row r's obs at step t is 100 r + start + t)."""
    t = torch.arange(start, start + steps, dtype=torch.float32)
    obs = (t[:, None] + 100 * torch.arange(rows)[None]).unsqueeze(-1)
    terminals = torch.zeros(steps, rows, dtype=torch.bool)
    truncations = torch.zeros(steps, rows, dtype=torch.bool)
    for step, row in terminal:
        terminals[step - start, row] = True
    for step, row in truncated:
        truncations[step - start, row] = True
    return {
        "observations": obs,
        "next_observations": obs + 0.5,  # a final observation is told apart by its .5
        "actions": obs.clone(),
        "rewards": obs[..., 0] * 10,
        "terminals": terminals,
        "truncations": truncations,
        "masks": torch.ones(steps, rows, dtype=torch.bool),
    }


def test_timeline_across_rollouts_and_episode_ends() -> None:
    replay = SequenceReplay((1,), torch.float32, 1, capacity=100, num_rows=2, seq_len=2)
    replay.add_rollout(_rollout(0, 3, 2, terminal=[(1, 0)]))
    replay.add_rollout(_rollout(3, 2, 2, truncated=[(3, 1)]))
    assert replay.num_added == 10 and replay.count.tolist() == [6, 6]
    row0 = replay.obs[0, :6, 0].tolist()
    assert row0 == [0, 1, 1.5, 2, 3, 4]  # the terminal's final observation is a step
    assert replay.conts[0, :6].tolist() == [1, 1, 0, 1, 1, 1]
    assert replay.firsts[0, :6].tolist() == [True, False, False, True, False, False]
    # the previous action and the reward that came with each observation; zero at firsts
    assert replay.actions[0, :6, 0].tolist() == [0, 0, 1, 0, 2, 3]
    assert replay.rewards[0, :6].tolist() == [0, 0, 10, 0, 20, 30]
    row1 = replay.obs[1, :6, 0].tolist()
    assert row1 == [100, 101, 102, 103, 103.5, 104]  # truncated: the episode continues
    assert replay.conts[1, :6].tolist() == [1, 1, 1, 1, 1, 1]
    assert replay.firsts[1, :6].tolist() == [True, False, False, False, False, True]


def test_ring_keeps_the_newest_and_windows_are_contiguous() -> None:
    replay = SequenceReplay((1,), torch.float32, 1, capacity=20, num_rows=2, seq_len=4, seed=3)
    for start in range(0, 60, 6):
        replay.add_rollout(_rollout(start, 6, 2))
    assert len(replay) == 20 and replay.count.tolist() == [10, 10]
    batch = replay.sample(64)
    obs = batch["observations"][..., 0]
    assert obs.shape == (64, 4)
    assert torch.equal(obs[:, 1:] - obs[:, :-1], torch.ones(64, 3))  # no seam inside a window
    assert float((obs % 100).min()) >= 50  # only the newest 10 steps of each row
    assert bool(batch["firsts"][:, 0].all()) and not bool(batch["firsts"][:, 1:].any())
    assert set((obs[:, 0] // 100).tolist()) == {0.0, 1.0}  # both rows are drawn


def test_state_round_trip_and_seeded_sampling() -> None:
    a = SequenceReplay((1,), torch.float32, 1, capacity=40, num_rows=1, seq_len=3, seed=1)
    a.add_rollout(_rollout(0, 7, 1, terminal=[(4, 0)]))
    b = SequenceReplay((1,), torch.float32, 1, capacity=40, num_rows=1, seq_len=3, seed=9)
    a.sample(5)  # move a's sampler on; b takes it over from here
    b.load_state_dict(a.state_dict())
    x, y = a.sample(8), b.sample(8)
    assert all(torch.equal(x[k], y[k]) for k in x)
    a.add_rollout(_rollout(7, 2, 1))
    b.add_rollout(_rollout(7, 2, 1))
    assert torch.equal(a.obs, b.obs) and torch.equal(a.actions, b.actions)


def test_mistakes_are_clear() -> None:
    replay = SequenceReplay((1,), torch.float32, 1, capacity=10, num_rows=2, seq_len=4)
    with pytest.raises(APIUsageError, match="no window"):
        replay.sample(1)
    with pytest.raises(APIUsageError, match="holds 2 rows"):
        replay.add_rollout(_rollout(0, 3, 1))
    bad = _rollout(0, 3, 2)
    bad["masks"][0, 0] = False
    with pytest.raises(APIUsageError, match="every row live"):
        replay.add_rollout(bad)
