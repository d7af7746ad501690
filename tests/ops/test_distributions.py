"""Categorical ops with masked (-inf) logits."""

from __future__ import annotations

import torch

from fugu.ops import categorical_entropy, mask_logits


def test_masked_entropy_has_finite_gradients():
    logits = torch.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    masked = mask_logits(logits, torch.tensor([[True, False, True]]))
    categorical_entropy(masked).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 1] == 0
