"""PPO losses and statistics against direct formulas; distributions math."""

from __future__ import annotations

import math

import pytest
import torch

from fugu import ops

torch.set_num_threads(1)  # tiny networks: more threads only contend on a shared machine


def test_policy_loss_reference():
    g = torch.Generator().manual_seed(0)
    new = torch.randn(64, generator=g)
    old = new + 0.3 * torch.randn(64, generator=g)
    adv = torch.randn(64, generator=g)
    got = ops.ppo_policy_loss(new, old, adv, 0.2)
    total = 0.0
    for i in range(64):
        ratio = math.exp(float(new[i] - old[i]))
        clipped = min(max(ratio, 0.8), 1.2)
        total += min(ratio * float(adv[i]), clipped * float(adv[i]))
    assert got.item() == pytest.approx(-total / 64, rel=1e-5)


def test_policy_loss_gradient_vanishes_outside_clip():
    new = torch.log(torch.tensor([2.0])).requires_grad_()
    ops.ppo_policy_loss(new, torch.zeros(1), torch.ones(1), 0.2).backward()
    assert new.grad is not None and new.grad.item() == 0.0


def test_value_loss_clipped_reference():
    v = torch.tensor([1.0, -1.0, 0.1])
    old = torch.zeros(3)
    ret = torch.tensor([2.0, 0.0, 0.0])
    got = ops.ppo_value_loss(v, old, ret, 0.5)
    want = 0.5 * (max(1.0, 1.5**2) + max(1.0, 0.25) + max(0.01, 0.01)) / 3
    assert got.item() == pytest.approx(want)
    assert ops.ppo_value_loss(v, old, ret, None).item() == pytest.approx(0.5 * (1 + 1 + 0.01) / 3)


def test_normalize_and_stats():
    x = torch.tensor([1.0, 2.0, 3.0, 6.0])
    n = ops.normalize_advantages(x)
    assert n.mean().abs().item() < 1e-6 and n.std().item() == pytest.approx(1.0, abs=1e-5)
    assert ops.approx_kl(torch.tensor([0.1, -0.1])).item() > 0
    assert ops.clip_fraction(torch.log(torch.tensor([1.0, 1.3, 0.7, 1.1])), 0.2).item() == 0.5
    assert ops.explained_variance(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0])).item() == 0.0


def test_categorical_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(32, 5, generator=g)
    actions = torch.randint(0, 5, (32,), generator=g)
    ref = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(ops.categorical_log_prob(logits, actions), ref.log_prob(actions))
    torch.testing.assert_close(ops.categorical_entropy(logits), ref.entropy())
    assert ops.entropy is ops.categorical_entropy


def test_categorical_sample_frequencies_and_masks():
    g = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]])).expand(20000, 3)
    counts = torch.bincount(ops.categorical_sample(logits, g), minlength=3).float() / 20000
    torch.testing.assert_close(counts, torch.tensor([0.2, 0.5, 0.3]), atol=0.02, rtol=0)
    mask = torch.tensor([[False, True, False]]).expand(1000, 3)
    masked = ops.mask_logits(torch.randn(1000, 3, generator=g), mask)
    assert (ops.categorical_sample(masked, g) == 1).all()
    assert torch.isfinite(ops.categorical_entropy(masked)).all()
    assert torch.isfinite(
        ops.categorical_log_prob(masked, torch.ones(1000, dtype=torch.long))
    ).all()


def test_gaussian_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mean = torch.randn(16, 3, generator=g)
    log_std = torch.randn(3, generator=g) * 0.3
    actions = ops.gaussian_sample(mean, log_std, g)
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(
        ops.gaussian_log_prob(mean, log_std, actions), ref.log_prob(actions).sum(-1)
    )
    torch.testing.assert_close(ops.gaussian_entropy(log_std, (16,)), ref.entropy().sum(-1))


def test_fused_sample_log_prob_matches_separate_calls():
    logits = torch.randn(300, 4, generator=torch.Generator().manual_seed(5))
    a1 = ops.categorical_sample(logits, torch.Generator().manual_seed(9))
    a2, logp = ops.categorical_sample_log_prob(logits, torch.Generator().manual_seed(9))
    assert torch.equal(a1, a2)
    torch.testing.assert_close(logp, ops.categorical_log_prob(logits, a2))


def test_fast_tanh_matches_tanh_and_its_gradient():
    x = torch.linspace(-8, 8, 101, dtype=torch.float32).requires_grad_()
    y = ops.fast_tanh(x)
    torch.testing.assert_close(y, torch.tanh(x), atol=1e-6, rtol=0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, 1 - torch.tanh(x.detach()) ** 2, atol=1e-6, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(
            ops.fast_tanh(x.detach()), torch.tanh(x.detach()), atol=1e-6, rtol=0
        )
