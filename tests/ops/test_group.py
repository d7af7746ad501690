"""Group-relative math against slow per-group references."""

from __future__ import annotations

import pytest
import torch

from fugu.ops.group import (
    group_advantages,
    group_has_signal,
    grouped_clip_loss,
    kl_to_reference,
    soft_overlong_penalty,
)


def test_group_advantages_match_a_per_group_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    rewards = torch.randn(40, generator=gen)
    groups = torch.randint(0, 7, (40,), generator=gen) * 3  # labels need not be contiguous
    got = group_advantages(rewards, groups)
    for label in groups.unique():
        member = groups == label
        r = rewards[member].double()
        want = (r - r.mean()) / (r.std(unbiased=False) + 1e-6)
        torch.testing.assert_close(got[member], want.float())
    centred = group_advantages(rewards, groups, scale=False)
    for label in groups.unique():
        member = groups == label
        torch.testing.assert_close(centred[member].sum(), torch.tensor(0.0), atol=1e-5, rtol=0)


def test_group_advantages_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="group_ids"):
        group_advantages(torch.zeros(3), torch.zeros(4, dtype=torch.long))


def test_signal_marks_only_groups_with_different_rewards() -> None:
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 5.0])
    groups = torch.tensor([0, 0, 1, 1, 2])
    assert group_has_signal(rewards, groups).tolist() == [False, False, True, True, False]


def test_clip_high_widens_only_the_upper_side() -> None:
    lp = torch.log(torch.tensor([1.25, 0.7]))
    old = torch.zeros(2)
    positive = torch.tensor([1.0, 1.0])
    symmetric = grouped_clip_loss(lp, old, positive, clip_low=0.2)
    higher = grouped_clip_loss(lp, old, positive, clip_low=0.2, clip_high=0.28)
    # ratio 1.25 is clipped to 1.2 symmetrically but kept under clip-higher.
    torch.testing.assert_close(symmetric, -(1.2 + 0.7) / 2 * torch.ones(()))
    torch.testing.assert_close(higher, -(1.25 + 0.7) / 2 * torch.ones(()))
    negative = -positive
    torch.testing.assert_close(
        grouped_clip_loss(lp, old, negative, clip_low=0.2),
        grouped_clip_loss(lp, old, negative, clip_low=0.2, clip_high=0.28),
    )


def test_token_level_weights_long_sequences_more() -> None:
    lp = torch.zeros(2, 4)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    per_sequence = grouped_clip_loss(lp, lp, adv, mask=mask)
    per_token = grouped_clip_loss(lp, lp, adv, mask=mask, token_level=True)
    torch.testing.assert_close(per_sequence, torch.tensor(0.0))
    torch.testing.assert_close(per_token, torch.tensor(-3.0 / 5.0))


def test_kl_is_zero_at_the_reference_and_positive_elsewhere() -> None:
    lp = torch.tensor([-1.0, -2.0, -0.5])
    assert torch.all(kl_to_reference(lp, lp) == 0)
    assert torch.all(kl_to_reference(lp, lp + 0.3) > 0)


def test_overlong_penalty_rejects_a_bad_buffer() -> None:
    with pytest.raises(ValueError, match="buffer"):
        soft_overlong_penalty(torch.tensor([3]), max_length=4, buffer=0)
