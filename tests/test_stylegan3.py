"""StyleGAN3 specifics: equivariance of configs T and R, filter design, magnitude EMA, options."""

from __future__ import annotations

import math

import pytest
import torch

from styletalker_core.nn.reference import filtered_lrelu_reference
from styletalker_stylegan3.generator import StyleGAN3Generator, rotation_transform

SMALL = dict(resolution=32, z_dim=16, w_dim=16, channel_base=512, channel_max=16, num_layers=6, margin_size=6)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images nominally in [-1, 1] (peak-to-peak 2)."""
    return 10 * math.log10(4 / (a - b).square().mean().item())


def build(config: str, **options) -> StyleGAN3Generator:
    torch.manual_seed(0)
    return StyleGAN3Generator(config=config, **{**SMALL, **options}).eval()


def render(generator: StyleGAN3Generator, ws: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
    generator.set_input_transform(transform)
    try:
        with torch.no_grad():
            return generator.synthesis(ws)
    finally:
        generator.set_input_transform(torch.eye(3))


def test_config_r_is_rotation_equivariant_and_t_is_not():
    """Rotating the input by 90 degrees rotates the image: exactly (float precision) for R,
    whose 1x1 convolutions and radial filters have no preferred direction; not for T."""
    results = {}
    for config in ("t", "r"):
        generator = build(config)
        ws = generator.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)))
        with torch.no_grad():
            image = generator.synthesis(ws)
        rotated = render(generator, ws, rotation_transform(math.pi / 2))
        results[config] = psnr(torch.rot90(image, -1, dims=[2, 3]), rotated)
    assert results["r"] > 80, results
    assert results["t"] < 40, results


@pytest.mark.parametrize("config", ["t", "r"])
def test_integer_translation_equivariance(config):
    """Translating the input by whole pixels translates the image (interior, away from the wrap):
    the paper's EQ-T; both configs are translation equivariant to high precision."""
    generator = build(config)
    ws = generator.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        image = generator.synthesis(ws)
    for shift in (2, -3):
        transform = torch.eye(3)
        transform[0, 2] = shift / generator.resolution
        moved = render(generator, ws, transform)
        expected = torch.roll(image, -shift, dims=3)
        assert psnr(expected[..., 4:-4], moved[..., 4:-4]) > 60


@pytest.mark.parametrize("config", ["t", "r"])
def test_layer_filters_match_scipy_design(config):
    signal = pytest.importorskip("scipy.signal")
    generator = build(config)
    radial = 0
    for name in generator.layer_names:
        layer = getattr(generator.synthesis_network, name)
        if layer.up_filter is not None:
            assert layer.up_filter.ndim == 1 and math.isclose(layer.up_filter.sum().item(), 1.0, rel_tol=1e-5)
        if layer.down_filter is not None:
            radial += layer.down_filter.ndim == 2
            assert math.isclose(layer.down_filter.sum().item(), 1.0, rel_tol=1e-5)
        assert layer.conv_kernel == (1 if config == "r" or layer.is_torgb else 3)
    assert (radial > 0) == (config == "r")
    first = getattr(generator.synthesis_network, generator.layer_names[0])
    schedule_filter = torch.as_tensor(signal.firwin(numtaps=first.up_filter.numel(), cutoff=2.0,
                                                    width=first_half_width(generator) * 2, fs=first_rate(generator) * 2),
                                      dtype=torch.float32)
    torch.testing.assert_close(first.up_filter, schedule_filter, atol=1e-6, rtol=1e-5)


def first_rate(generator: StyleGAN3Generator) -> float:
    return generator.synthesis_network.input.sampling_rate


def first_half_width(generator: StyleGAN3Generator) -> float:
    return max(2 ** 2.1, first_rate(generator) / 2) - 2.0


def test_layers_equal_the_plain_filtered_lrelu():
    generator = build("t")
    layer = getattr(generator.synthesis_network, generator.layer_names[2])
    x = torch.randn(2, layer.in_channels, layer.in_size, layer.in_size)
    w = torch.randn(2, 16)
    with torch.no_grad():
        fast = layer(x, w)
        styles = layer.affine(w)
        from styletalker_core.nn.reference import modulated_conv2d_reference

        y = modulated_conv2d_reference(x, layer.weight, styles, padding=layer.conv_kernel - 1,
                                       input_gain=layer.magnitude_ema.rsqrt())
        plain = filtered_lrelu_reference(y, layer.up_filter, layer.down_filter, layer.bias, up=layer.up_factor,
                                         down=layer.down_factor, padding=layer.padding, clamp=256)
    assert fast.shape == (2, layer.out_channels, layer.out_size, layer.out_size)
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-4)


def test_magnitude_ema_tracks_input_power_in_training():
    generator = build("t", magnitude_ema_beta=0.5)
    generator.train()
    ws = generator.mapping(torch.randn(4, 16))
    before = [getattr(generator.synthesis_network, n).magnitude_ema.item() for n in generator.layer_names]
    with torch.no_grad():
        generator.synthesis(ws, update_emas=True)
    after = [getattr(generator.synthesis_network, n).magnitude_ema.item() for n in generator.layer_names]
    assert all(b != a for b, a in zip(before, after))
    with torch.no_grad():
        generator.synthesis(ws)  # without update_emas nothing moves
    assert after == [getattr(generator.synthesis_network, n).magnitude_ema.item() for n in generator.layer_names]


def test_options_are_validated():
    with pytest.raises(ValueError, match="config"):
        StyleGAN3Generator(config="x", **SMALL)
    with pytest.raises(ValueError, match="num_layers"):
        StyleGAN3Generator(**{**SMALL, "num_layers": 2})
    generator = build("r", dtype="bfloat16")
    ws = generator.mapping(torch.randn(1, 16))
    with torch.no_grad():
        low, exact = generator.synthesis(ws), build("r").synthesis(ws)
    assert low.dtype == torch.float32 and (low - exact).abs().max() < 0.1 * max(1.0, exact.abs().max().item())
