"""Convolutional encoder and decoder of image observations, for world models.

:func:`image_layout` decides from an observation shape and dtype whether observations are
images: a 3-D ``uint8`` shape whose last axis (``"hwc"``, e.g. ``64x64x3``) or first axis
(``"chw"``, e.g. ``3x64x64``) has 1, 3 or 4 channels. :class:`ConvEncoder` maps a batch of
such images (any leading dimensions, the layout the env gives) to a flat embedding through
stride-2 convolutions (each halving the side and doubling the channels, LayerNorm'd over
channels, SiLU); :class:`ConvDecoder` mirrors it with transposed convolutions back to the
image in the same layout. Pixels are scaled to ``[-0.5, 0.5]`` (:func:`normalize_pixels`),
which is also the decoder's regression target.

Example:
    >>> image_layout((64, 64, 3), torch.uint8), image_layout((3, 64, 64), torch.uint8)
    ('hwc', 'chw')
    >>> image_layout((5,), torch.float32) is None
    True
    >>> enc = ConvEncoder((32, 32, 3), depth=8, embed=16)
    >>> x = torch.zeros(2, 5, 32, 32, 3, dtype=torch.uint8)
    >>> enc(normalize_pixels(x)).shape
    torch.Size([2, 5, 16])
    >>> ConvDecoder(10, (32, 32, 3), depth=8)(torch.zeros(2, 5, 10)).shape
    torch.Size([2, 5, 32, 32, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fugu.core.errors import APIUsageError

__all__ = ["ConvDecoder", "ConvEncoder", "image_layout", "normalize_pixels"]

_CHANNELS = (1, 3, 4)
_MIN_SIDE = 4
"""The convolutions stop halving the image at this side (or when it turns odd)."""


def image_layout(shape: Sequence[int], dtype: torch.dtype | str) -> str | None:
    """``"hwc"`` or ``"chw"`` when observations of ``shape``/``dtype`` are images, else ``None``.

    Raises:
        APIUsageError: A 3-D ``uint8`` shape with no 1/3/4-channel axis at either end.
    """
    if len(shape) != 3 or str(dtype).rsplit(".", 1)[-1] != "uint8":
        return None
    if shape[-1] in _CHANNELS:
        return "hwc"
    if shape[0] in _CHANNELS:
        return "chw"
    raise APIUsageError(
        f"uint8 observations of shape {tuple(shape)} look like images but neither the first "
        "nor the last axis has 1, 3 or 4 channels"
    )


def normalize_pixels(x: Tensor) -> Tensor:
    """``uint8`` pixels to float in ``[-0.5, 0.5]``."""
    return x.float() / 255.0 - 0.5


class _ChannelNorm(nn.Module):
    """LayerNorm over the channels of ``[N, C, H, W]`` feature maps."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _geometry(shape: Sequence[int], depth: int) -> tuple[str, int, int, int, list[int]]:
    """``(layout, channels, height, width, [channels after each stride-2 layer])``."""
    layout = image_layout(shape, torch.uint8)
    if layout is None:
        raise APIUsageError(f"a conv encoder needs an image shape (HxWxC or CxHxW), got {shape}")
    h, w, c = shape if layout == "hwc" else (shape[1], shape[2], shape[0])
    widths: list[int] = []
    while h > _MIN_SIDE and w > _MIN_SIDE and h % 2 == 0 and w % 2 == 0:
        widths.append(depth * 2 ** len(widths))
        h, w = h // 2, w // 2
    if not widths:
        raise APIUsageError(f"image of shape {tuple(shape)} is too small for a conv encoder")
    return layout, int(c), int(h), int(w), widths


class ConvEncoder(nn.Module):
    """Images ``[..., H, W, C]`` (or ``[..., C, H, W]``), normalised, to ``[..., embed]``.

    Args:
        shape: One observation's shape.
        depth: Channels of the first convolution (doubled by each next one).
        embed: Output size.
    """

    def __init__(self, shape: Sequence[int], depth: int = 16, embed: int = 256) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.layout, channels, h, w, widths = _geometry(self.shape, depth)
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(channels, width, 4, 2, 1), _ChannelNorm(width), nn.SiLU()]
            channels = width
        self.convs = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Linear(channels * h * w, embed), nn.LayerNorm(embed), nn.SiLU())

    def forward(self, x: Tensor) -> Tensor:
        """Embeddings of normalised images (see :func:`normalize_pixels`)."""
        lead = x.shape[: x.dim() - 3]
        x = x.reshape(-1, *self.shape)
        if self.layout == "hwc":
            x = x.permute(0, 3, 1, 2)
        return self.out(self.convs(x).flatten(1)).reshape(*lead, -1)


class ConvDecoder(nn.Module):
    """Features ``[..., feat]`` to normalised images in the layout of ``shape``.

    Args:
        feat: Input size.
        shape: One observation's shape (the output's trailing shape).
        depth: Channels of the encoder's first convolution.
    """

    def __init__(self, feat: int, shape: Sequence[int], depth: int = 16) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.layout, channels, h, w, widths = _geometry(self.shape, depth)
        self.start = (widths[-1], h, w)
        self.inp = nn.Linear(feat, widths[-1] * h * w)
        layers: list[nn.Module] = []
        outs = [*reversed(widths[:-1]), channels]
        width = widths[-1]
        for k, out in enumerate(outs):
            layers.append(nn.ConvTranspose2d(width, out, 4, 2, 1))
            if k < len(outs) - 1:
                layers += [_ChannelNorm(out), nn.SiLU()]
            width = out
        self.deconvs = nn.Sequential(*layers)

    def forward(self, feat: Tensor) -> Tensor:
        """Reconstructed normalised images ``[..., *shape]``."""
        lead = feat.shape[:-1]
        x = self.deconvs(self.inp(feat.reshape(-1, feat.shape[-1])).view(-1, *self.start))
        if self.layout == "hwc":
            x = x.permute(0, 2, 3, 1)
        return x.reshape(*lead, *self.shape)
