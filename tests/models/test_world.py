"""World model: symlog/two-hot round trips, RSSM shapes, KL free bits, loss decreases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fugu.algos.dreamer import lambda_returns
from fugu.models.pixels import ConvEncoder
from fugu.models.world import (
    RSSM,
    TwoHot,
    WorldModel,
    WorldModelConfig,
    categorical_kl,
    kl_balanced,
    symexp,
    symlog,
)

SMALL = WorldModelConfig(deter=32, groups=4, classes=4, hidden=32, embed=32)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_symlog_round_trip_and_shape() -> None:
    x = torch.linspace(-1e4, 1e4, 101)
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-4)
    assert symlog(torch.tensor(0.0)) == 0 and symlog(torch.tensor(np.e - 1)) == pytest.approx(1.0)


def test_twohot_encodes_two_bins_and_round_trips() -> None:
    th = TwoHot(bins=41, low=-5, high=5)
    x = torch.tensor([-30.0, -2.5, 0.0, 0.3, 7.0])
    enc = th.encode(x)
    assert torch.allclose(enc.sum(-1), torch.ones(5))
    assert int((enc > 0).sum(-1).max()) <= 2
    assert torch.allclose(th.decode(torch.log(enc + 1e-12)), x, rtol=1e-3, atol=1e-3)
    logits = torch.zeros(5, 41, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        th.loss(logits, x).sum().backward()
        opt.step()
    assert torch.allclose(th.decode(logits), x, rtol=0.05, atol=0.05)


def test_kl_free_bits_math() -> None:
    p = torch.randn(3, 4, 4)
    assert torch.allclose(categorical_kl(p, p), torch.zeros(3), atol=1e-6)
    q = torch.randn(3, 4, 4)
    kl = categorical_kl(p, q)
    pp, qq = torch.softmax(p, -1), torch.softmax(q, -1)
    assert torch.allclose(kl, (pp * (pp.log() - qq.log())).sum((-1, -2)), atol=1e-5)
    loss, dyn, rep = kl_balanced(p, q, free=1.0, dyn_scale=0.5, rep_scale=0.1)
    expected = 0.5 * dyn.clamp_min(1.0) + 0.1 * rep.clamp_min(1.0)
    assert torch.allclose(loss, expected) and torch.allclose(dyn, rep)
    # below the free bits the loss is constant: no gradient flows
    p_small = (q + 1e-3 * torch.randn_like(q)).requires_grad_(True)
    loss_small, *_ = kl_balanced(p_small, q, free=1.0)
    loss_small.sum().backward()
    assert p_small.grad is not None and float(p_small.grad.abs().max()) == 0.0


def test_rssm_shapes_and_straight_through() -> None:
    rssm = RSSM(action_dim=2, cfg=SMALL)
    embed = torch.randn(3, 5, SMALL.embed)
    actions = torch.randn(3, 5, 2)
    firsts = torch.zeros(3, 5, dtype=torch.bool)
    firsts[:, 0] = True
    h, z, post, prior = rssm.observe(embed, actions, firsts)
    assert h.shape == (3, 5, 32) and z.shape == (3, 5, 16)
    assert post.shape == prior.shape == (3, 5, 4, 4)
    onehot = z.detach().view(3, 5, 4, 4)
    assert torch.allclose(onehot.sum(-1), torch.ones(3, 5, 4))
    assert torch.allclose(onehot, onehot.round(), atol=1e-6)  # one-hot up to rounding
    z.sum().backward()  # straight-through: gradients reach the posterior network
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in rssm.post_net.parameters())
    h2, z2, prior2 = rssm.img_step(h[:, -1], z[:, -1].detach(), torch.zeros(3, 2))
    assert h2.shape == (3, 32) and z2.shape == (3, 16) and prior2.shape == (3, 4, 4)


def test_world_model_loss_decreases_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = WorldModel(3, 1, SMALL)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(4, 10, 3, generator=g)
    actions = torch.randn(4, 10, 1, generator=g)
    rewards = obs[..., 0] * 2.0
    conts = torch.ones(4, 10)
    firsts = torch.zeros(4, 10, dtype=torch.bool)
    firsts[:, 0] = True
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, metrics, _, _ = model.loss(obs, actions, rewards, conts, firsts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert set(metrics) >= {"world/recon", "world/reward", "world/kl_dyn", "world/kl_rep"}


def test_lambda_returns_match_the_recursion() -> None:
    r = torch.tensor([[1.0], [2.0]])
    v = torch.tensor([[0.0], [10.0], [20.0]])
    d = torch.full((2, 1), 0.9)
    out = lambda_returns(r, v, d, lam=0.5)
    second = 2.0 + 0.9 * 20.0
    first = 1.0 + 0.9 * (0.5 * 10.0 + 0.5 * second)
    assert out.squeeze(1).tolist() == pytest.approx([first, second])


def test_world_model_picks_the_conv_encoder_for_images_and_trains_it() -> None:
    torch.manual_seed(0)
    cfg = WorldModelConfig(deter=16, groups=2, classes=4, hidden=16, embed=16, cnn_depth=4)
    model = WorldModel((16, 16, 3), 1, cfg, torch.uint8)
    assert model.layout == "hwc" and isinstance(model.encoder, ConvEncoder)
    assert isinstance(WorldModel(5, 1, cfg).encoder, torch.nn.Sequential)
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (2, 4, 16, 16, 3), generator=g, dtype=torch.uint8)
    firsts = torch.zeros(2, 4, dtype=torch.bool)
    firsts[:, 0] = True
    loss, metrics, h, _ = model.loss(obs, torch.zeros(2, 4, 1), torch.ones(2, 4),
                                     torch.ones(2, 4), firsts)  # fmt: skip
    loss.backward()
    assert h.shape == (2, 4, 16) and np.isfinite(metrics["world/recon"])
    conv = model.encoder.convs[0]
    assert conv.weight.grad is not None and float(conv.weight.grad.abs().sum()) > 0
