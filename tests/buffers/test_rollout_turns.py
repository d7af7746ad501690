"""RolloutStorage.batch on turn-based rollouts: each seat's outcome reaches its own last move,
and a move whose outcome lies past the rollout is held back, not bootstrapped from the
waiting seat's (never trained) value."""

from __future__ import annotations

import torch
from gymnasium import spaces

from fugu.buffers.rollout import RolloutStorage, rollout_fields
from fugu.core.schema import Field
from fugu.ops import gae


def _storage(masks, rewards, terminals, values, last_values):
    fields = dict(rollout_fields(spaces.Box(-1, 1, (1,)), spaces.Discrete(2)))
    fields["values"] = Field("values", (), "float32")
    storage = RolloutStorage(fields, masks.shape[0], masks.shape[1])
    storage.tensors["masks"].copy_(masks)
    storage.tensors["rewards"].copy_(rewards)
    storage.tensors["terminals"].copy_(terminals)
    storage.tensors["values"].copy_(values)
    storage.last_values.copy_(last_values)
    return storage


# Two seats of one game: row 0 moves at t = 0, 2, 4; row 1 at t = 1, 3 (and would at 5).
TURNS = torch.tensor([[True, False], [False, True]] * 3)[:5]


def test_the_losing_seat_gets_the_terminal_reward_on_its_own_last_move():
    rewards = torch.zeros(5, 2)
    terminals = torch.zeros(5, 2, dtype=torch.bool)
    rewards[4] = torch.tensor([1.0, -1.0])  # row 0's move at t=4 wins: row 1 waits and loses
    terminals[4] = True
    values = torch.arange(10.0).reshape(5, 2)
    batch = _storage(TURNS, rewards, terminals, values, torch.tensor([50.0, 60.0])).batch()
    assert batch["rewards"][:, 1].tolist() == [0.0, 0.0, 0.0, -1.0, 0.0]
    assert batch["terminals"][:, 1].tolist() == [False, False, False, True, False]
    assert batch["rewards"][4, 0] == 1.0 and batch["terminals"][4, 0]
    assert torch.equal(batch["masks"], TURNS)  # both outcomes known: every move is trained
    # row 1's move at t=1 bootstraps from its own next move (t=3), not from row 0's
    assert batch["next_values"][1, 1] == values[3, 1]


def test_a_move_whose_outcome_is_past_the_rollout_is_held_back():
    # The game goes on: row 1 waits at the last step, its move at t=3 is answered next rollout.
    rewards = torch.zeros(5, 2)
    terminals = torch.zeros(5, 2, dtype=torch.bool)
    values = torch.arange(10.0).reshape(5, 2)
    last = torch.tensor([50.0, 60.0])  # 60: the value of row 1's waiting observation
    batch = _storage(TURNS, rewards, terminals, values, last).batch()
    masks = batch["masks"]
    assert not masks[3, 1] and masks[1, 1]  # row 1's pending move is left out of the update
    assert masks[:, 0].tolist() == TURNS[:, 0].tolist()  # row 0 is live at the end: unchanged
    assert batch["next_values"][1, 1] == values[3, 1]  # its earlier move bootstraps from it
    assert batch["next_values"][4, 0] == last[0]
    adv = gae(
        batch["rewards"], batch["values"], batch["next_values"], batch["terminals"],
        batch["truncations"], 0.9, 1.0, masks=masks,
    )  # fmt: skip
    assert adv[3, 1] == 0.0  # no advantage (nor gradient) for the held-back move
    assert torch.isclose(adv[1, 1], 0.9 * values[3, 1] - values[1, 1])
