"""The conv encoder/decoder: layouts chosen from the shape, shapes, gradients, clear errors."""

from __future__ import annotations

import pytest
import torch

from fugu.core.errors import APIUsageError
from fugu.models.pixels import ConvDecoder, ConvEncoder, image_layout, normalize_pixels


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: more threads only contend
    yield
    torch.set_num_threads(before)


def test_image_layout_from_shape_and_dtype() -> None:
    assert image_layout((64, 64, 3), torch.uint8) == "hwc"
    assert image_layout((84, 84, 1), "uint8") == "hwc"
    assert image_layout((4, 84, 84), torch.uint8) == "chw"
    assert image_layout((64, 64, 3), torch.float32) is None  # float: a vector observation
    assert image_layout((8,), torch.uint8) is None
    with pytest.raises(APIUsageError, match="1, 3 or 4 channels"):
        image_layout((10, 10, 10), torch.uint8)


@pytest.mark.parametrize("shape", [(32, 32, 3), (3, 32, 32), (64, 48, 1)])
def test_encoder_decoder_shapes_and_gradients(shape) -> None:
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder(shape, depth=4, embed=12), ConvDecoder(12, shape, depth=4)
    pixels = torch.randint(0, 256, (2, 3, *shape), dtype=torch.uint8)
    x = normalize_pixels(pixels)
    assert float(x.min()) >= -0.5 and float(x.max()) <= 0.5
    embed = encoder(x)
    assert embed.shape == (2, 3, 12)
    recon = decoder(embed)
    assert recon.shape == (2, 3, *shape)
    ((recon - x) ** 2).mean().backward()
    for module in (encoder, decoder):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_encoder_sees_the_channel_layout() -> None:
    # the same image in HWC and CHW gives the same embedding with the same weights
    torch.manual_seed(0)
    hwc, chw = (
        ConvEncoder((16, 16, 3), depth=4, embed=8),
        ConvEncoder((3, 16, 16), depth=4, embed=8),
    )
    chw.load_state_dict(hwc.state_dict())
    image = torch.rand(2, 16, 16, 3) - 0.5
    assert torch.allclose(hwc(image), chw(image.permute(0, 3, 1, 2)), atol=1e-6)


def test_autoencoder_learns_a_few_images() -> None:
    torch.manual_seed(0)
    shape = (16, 16, 3)
    encoder, decoder = ConvEncoder(shape, depth=8, embed=16), ConvDecoder(16, shape, depth=8)
    images = normalize_pixels(torch.randint(0, 256, (4, *shape), dtype=torch.uint8))
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(60):
        loss = ((decoder(encoder(images)) - images) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_too_small_or_not_an_image() -> None:
    with pytest.raises(APIUsageError, match="too small"):
        ConvEncoder((4, 4, 3))
    with pytest.raises(APIUsageError, match="image shape"):
        ConvDecoder(8, (5,))
