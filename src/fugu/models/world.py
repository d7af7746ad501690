"""A DreamerV3-style world model (lite): RSSM with categorical latents, symlog, two-hot heads.

Hafner et al. (2023), "Mastering Diverse Domains through World Models". The pieces:

- :func:`symlog` / :func:`symexp`: ``sign(x) log(1 + |x|)`` and its inverse, so targets of any
  scale train with one set of hyperparameters.
- :class:`TwoHot`: a scalar is encoded as two-hot weights over fixed bins in symlog space and
  predicted as a softmax over them (cross-entropy loss); decoding is the expectation.
- :class:`RSSM`: a GRU deterministic state ``h`` and a stochastic state of ``groups``
  categoricals with ``classes`` classes each, sampled straight-through (one-hot forward,
  softmax gradient) with 1% uniform mixing; the prior sees ``h``, the posterior ``h`` and the
  observation embedding.
- :func:`kl_balanced`: KL balancing with free bits: ``dyn * max(free, KL(sg(q) || p)) + rep *
  max(free, KL(q || sg(p)))``.
- :class:`WorldModel`: an encoder (an MLP of symlog vector observations, or for ``uint8``
  images a :class:`~fugu.models.pixels.ConvEncoder`, chosen from the observation shape), RSSM,
  decoder (MSE to the symlog observation or to the normalised pixels), two-hot reward head and
  continue head, with :meth:`WorldModel.loss` over ``[B, T]`` sequences.

Example:
    >>> x = torch.tensor([-50.0, -1.0, 0.0, 3.0, 1000.0])
    >>> bool(torch.allclose(symexp(symlog(x)), x, rtol=1e-5))
    True
    >>> th = TwoHot()
    >>> bool(torch.allclose(th.decode(torch.log(th.encode(x) + 1e-12)), x, rtol=1e-3, atol=1e-3))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fugu.models.pixels import ConvDecoder, ConvEncoder, image_layout, normalize_pixels

__all__ = [
    "RSSM",
    "TwoHot",
    "WorldModel",
    "WorldModelConfig",
    "categorical_kl",
    "kl_balanced",
    "symexp",
    "symlog",
    "zero_head",
]


def symlog(x: Tensor) -> Tensor:
    """``sign(x) * log(1 + |x|)``."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    """``sign(x) * (exp(|x|) - 1)``, the inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


class TwoHot:
    """Two-hot encoding over ``bins`` equally spaced points in symlog space ``[low, high]``."""

    def __init__(self, bins: int = 255, low: float = -20.0, high: float = 20.0) -> None:
        self.points = torch.linspace(low, high, bins)

    @property
    def bins(self) -> int:
        """Number of bins."""
        return int(self.points.shape[0])

    def encode(self, x: Tensor) -> Tensor:
        """``[...] -> [..., bins]`` weights on the two bins around ``symlog(x)``."""
        y = symlog(x).clamp(self.points[0], self.points[-1])
        idx = torch.bucketize(y, self.points).clamp(1, self.bins - 1)
        lo, hi = self.points[idx - 1], self.points[idx]
        w_hi = ((y - lo) / (hi - lo)).clamp(0.0, 1.0)
        out = torch.zeros(*x.shape, self.bins, dtype=x.dtype)
        out.scatter_(-1, (idx - 1).unsqueeze(-1), (1.0 - w_hi).unsqueeze(-1))
        out.scatter_add_(-1, idx.unsqueeze(-1), w_hi.unsqueeze(-1))
        return out

    def decode(self, logits: Tensor) -> Tensor:
        """The expected value: ``symexp(sum softmax(logits) * points)``."""
        return symexp((torch.softmax(logits, -1) * self.points).sum(-1))

    def loss(self, logits: Tensor, x: Tensor) -> Tensor:
        """Cross-entropy of ``logits`` against the two-hot encoding of ``x`` (per element)."""
        return -(self.encode(x.detach()) * torch.log_softmax(logits, -1)).sum(-1)


def _mlp(sizes: list[int], last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2 or last_act:
            layers += [nn.LayerNorm(sizes[k + 1]), nn.SiLU()]
    return nn.Sequential(*layers)


def zero_head(net: nn.Sequential) -> None:
    """Zero the last linear layer of ``net`` (a head that starts predicting zero)."""
    last = net[-1]
    assert isinstance(last, nn.Linear)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


def categorical_kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """``KL(p || q)`` of ``[..., groups, classes]`` categoricals, summed over groups."""
    p_log = torch.log_softmax(p_logits, -1)
    q_log = torch.log_softmax(q_logits, -1)
    return (p_log.exp() * (p_log - q_log)).sum(-1).sum(-1)


def kl_balanced(
    post_logits: Tensor,
    prior_logits: Tensor,
    free: float = 1.0,
    dyn_scale: float = 0.5,
    rep_scale: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """KL balancing with free bits: ``(loss, dyn_kl, rep_kl)``, each per element.

    The dynamics term trains the prior towards the (stopped) posterior, the representation
    term the posterior towards the (stopped) prior; each is clipped below at ``free`` nats so
    that a KL already small is left alone.
    """
    dyn = categorical_kl(post_logits.detach(), prior_logits)
    rep = categorical_kl(post_logits, prior_logits.detach())
    loss = dyn_scale * dyn.clamp_min(free) + rep_scale * rep.clamp_min(free)
    return loss, dyn, rep


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes of the lite world model (far smaller than DreamerV3's)."""

    deter: int = 128
    groups: int = 8
    classes: int = 8
    hidden: int = 128
    embed: int = 128
    unimix: float = 0.01
    free_bits: float = 1.0
    cnn_depth: int = 16


class RSSM(nn.Module):
    """Recurrent state-space model with straight-through categorical latents.

    The state is ``(h, z)``: ``h [.., deter]`` and ``z [.., groups * classes]`` (one-hot per
    group); :meth:`feature` concatenates them.
    """

    def __init__(self, action_dim: int, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        stoch = cfg.groups * cfg.classes
        self.stoch = stoch
        self.inp = _mlp([stoch + action_dim, cfg.hidden], last_act=True)
        self.gru = nn.GRUCell(cfg.hidden, cfg.deter)
        self.prior_net = _mlp([cfg.deter, cfg.hidden, stoch])
        self.post_net = _mlp([cfg.deter + cfg.embed, cfg.hidden, stoch])

    def initial(self, batch: int) -> tuple[Tensor, Tensor]:
        """Zero ``(h, z)`` for ``batch`` sequences."""
        return torch.zeros(batch, self.cfg.deter), torch.zeros(batch, self.stoch)

    def feature(self, h: Tensor, z: Tensor) -> Tensor:
        """``[h, z]``."""
        return torch.cat([h, z], -1)

    def _logits(self, raw: Tensor) -> Tensor:
        logits = raw.view(*raw.shape[:-1], self.cfg.groups, self.cfg.classes)
        probs = torch.softmax(logits, -1)
        mix = self.cfg.unimix
        probs = (1 - mix) * probs + mix / self.cfg.classes
        return torch.log(probs)

    def sample(self, logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Straight-through one-hot samples, flattened to ``[.., groups * classes]``."""
        probs = logits.exp()
        flat = probs.reshape(-1, self.cfg.classes)
        idx = torch.multinomial(flat, 1, generator=generator).squeeze(-1)
        hard = F.one_hot(idx, self.cfg.classes).to(probs.dtype).view_as(probs)
        out = hard + probs - probs.detach()
        return out.reshape(*logits.shape[:-2], self.stoch)

    def mode(self, logits: Tensor) -> Tensor:
        """The most likely class of each group, one-hot, flattened to ``[.., groups * classes]``."""
        hard = F.one_hot(logits.argmax(-1), self.cfg.classes).to(logits.dtype)
        return hard.reshape(*logits.shape[:-2], self.stoch)

    def img_step(
        self, h: Tensor, z: Tensor, action: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One prior step: ``(h', z' ~ prior, prior_logits)``."""
        h = self.gru(self.inp(torch.cat([z, action], -1)), h)
        prior = self._logits(self.prior_net(h))
        return h, self.sample(prior, generator), prior

    def obs_step(
        self,
        h: Tensor,
        z: Tensor,
        action: Tensor,
        embed: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One filtering step: ``(h', z' ~ posterior, post_logits, prior_logits)``."""
        h = self.gru(self.inp(torch.cat([z, action], -1)), h)
        prior = self._logits(self.prior_net(h))
        post = self._logits(self.post_net(torch.cat([h, embed], -1)))
        return h, self.sample(post, generator), post, prior

    def observe(
        self,
        embed: Tensor,
        actions: Tensor,
        firsts: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Filter ``[B, T]`` sequences: ``(h, z, post_logits, prior_logits)``, each ``[B, T, ..]``.

        ``actions[:, t]`` is the action taken *before* observation ``t`` (zero at starts);
        ``firsts[:, t]`` marks the first step of an episode, where the state is reset.
        """
        batch, steps = embed.shape[:2]
        h, z = self.initial(batch)
        hs, zs, posts, priors = [], [], [], []
        for t in range(steps):
            keep = (~firsts[:, t]).float().unsqueeze(-1)
            h, z = h * keep, z * keep
            h, z, post, prior = self.obs_step(h, z, actions[:, t] * keep, embed[:, t], generator)
            hs.append(h)
            zs.append(z)
            posts.append(post)
            priors.append(prior)
        return (torch.stack(hs, 1), torch.stack(zs, 1), torch.stack(posts, 1),
                torch.stack(priors, 1))  # fmt: skip


class WorldModel(nn.Module):
    """Encoder, RSSM, decoder, two-hot reward head and continue head.

    Args:
        obs_shape: One observation's shape (an int: a flat vector of that size).
        action_dim: Action size (continuous actions, or one-hot discrete ones).
        cfg: Sizes.
        obs_dtype: The observations' dtype: ``uint8`` images (``HxWxC`` or ``CxHxW``, see
            :func:`~fugu.models.pixels.image_layout`) get the convolutional encoder and decoder.
    """

    def __init__(
        self,
        obs_shape: int | tuple[int, ...],
        action_dim: int,
        cfg: WorldModelConfig | None = None,
        obs_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        cfg = cfg or WorldModelConfig()
        self.cfg = cfg
        shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
        self.obs_shape = shape
        self.layout = image_layout(shape, obs_dtype)
        self.rssm = RSSM(action_dim, cfg)
        feat = cfg.deter + cfg.groups * cfg.classes
        self.feat_dim = feat
        self.encoder: nn.Module
        self.decoder: nn.Module
        if self.layout is not None:
            self.encoder = ConvEncoder(shape, cfg.cnn_depth, cfg.embed)
            self.decoder = ConvDecoder(feat, shape, cfg.cnn_depth)
        else:
            size = 1
            for dim in shape:
                size *= dim
            self.encoder = _mlp([size, cfg.hidden, cfg.embed], last_act=True)
            self.decoder = _mlp([feat, cfg.hidden, size])
        self.twohot = TwoHot()
        self.reward_head = _mlp([feat, cfg.hidden, self.twohot.bins])
        self.cont_head = _mlp([feat, cfg.hidden, 1])
        zero_head(self.reward_head)  # start predicting 0 reward

    def preprocess(self, obs: Tensor) -> Tensor:
        """What the encoder reads and the decoder predicts: normalised pixels for images,
        ``symlog`` of the flattened vector otherwise (``[..., *obs_shape]`` in)."""
        if self.layout is not None:
            return normalize_pixels(obs)
        lead = obs.shape[: obs.dim() - len(self.obs_shape)]
        return symlog(obs.float().reshape(*lead, -1))

    def loss(
        self,
        obs: Tensor,
        actions: Tensor,
        rewards: Tensor,
        conts: Tensor,
        firsts: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, dict[str, float], Tensor, Tensor]:
        """World-model loss of ``[B, T]`` sequences: ``(loss, metrics, h, z)``.

        ``rewards[:, t]`` and ``conts[:, t]`` are what arrived with observation ``t``.
        """
        target = self.preprocess(obs)
        embed = self.encoder(target)
        h, z, post, prior = self.rssm.observe(embed, actions, firsts, generator)
        feat = self.rssm.feature(h, z)
        recon = ((self.decoder(feat) - target) ** 2).flatten(2).sum(-1)
        reward = self.twohot.loss(self.reward_head(feat), rewards)
        cont = F.binary_cross_entropy_with_logits(
            self.cont_head(feat).squeeze(-1), conts, reduction="none"
        )
        kl, dyn, rep = kl_balanced(post, prior, self.cfg.free_bits)
        total = (recon + reward + cont + kl).mean()
        metrics = {
            "world/recon": float(recon.detach().mean()),
            "world/reward": float(reward.detach().mean()),
            "world/cont": float(cont.detach().mean()),
            "world/kl_dyn": float(dyn.detach().mean()),
            "world/kl_rep": float(rep.detach().mean()),
        }
        return total, metrics, h.detach(), z.detach()
