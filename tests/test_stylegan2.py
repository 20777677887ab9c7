"""StyleGAN2 generator and discriminator specifics (the generic checks are in tests/contracts)."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe.types import check_value
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_stylegan2.discriminator import MinibatchStdLayer, StyleGAN2Discriminator
from styletalker_stylegan2.generator import StyleGAN2Generator, channels_per_resolution

SMALL = dict(z_dim=16, w_dim=16, channel_base=256, channel_max=16, mapping_layers=2)


@pytest.mark.parametrize("resolution, num_ws", [(32, 8), (64, 10), (256, 14), (1024, 18)])
def test_num_ws_and_channels(resolution, num_ws):
    channels = channels_per_resolution(resolution, 32768, 512)
    assert sorted(channels) == [4 * 2 ** i for i in range(len(channels))] and max(channels) == resolution
    assert channels[4] == 512 and channels[resolution] == min(512, 32768 // resolution)
    if resolution <= 64:
        generator = StyleGAN2Generator(resolution=resolution, **SMALL)
        assert generator.num_ws == num_ws


def test_invalid_resolution_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(resolution=48, **SMALL)


def test_speed_options_give_the_same_images():
    torch.manual_seed(0)
    reference = StyleGAN2Generator(resolution=32, **SMALL).eval()
    z = torch.randn(3, 16)
    with torch.no_grad():
        expected = reference(z)
        for options, tolerance in [
            (dict(modconv_mode="grouped"), 1e-4),
            (dict(modconv_mode="activation"), 1e-4),
            (dict(channels_last=True), 1e-4),
            (dict(dtype="bfloat16"), 0.1),
        ]:
            other = StyleGAN2Generator(resolution=32, **SMALL, **options).eval()
            other.load_state_dict(reference.state_dict())
            got = other(z)
            assert got.dtype == torch.float32
            assert (got - expected).abs().max() < tolerance * max(1.0, expected.abs().max().item()), options


def test_noise_modes():
    torch.manual_seed(0)
    generator = StyleGAN2Generator(resolution=32, **SMALL).eval()
    with torch.no_grad():
        for module in generator.modules():
            if hasattr(module, "noise_strength"):
                module.noise_strength.fill_(0.5)
        ws = generator.mapping(torch.randn(2, 16))
        const = generator.synthesis(ws, noise_mode="const")
        none = generator.synthesis(ws, noise_mode="none")
        random_a = generator.synthesis(ws, noise_mode="random")
        random_b = generator.synthesis(ws, noise_mode="random")
    assert not torch.allclose(const, none) and not torch.allclose(random_a, random_b)
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesis(ws, noise_mode="fixed")
    with pytest.raises(ValueError, match="ws must be"):
        generator.synthesis(ws[:, :3])


def test_conditional_generator_and_projection_discriminator():
    torch.manual_seed(0)
    generator = StyleGAN2Generator(resolution=32, c_dim=4, **SMALL).eval()
    discriminator = StyleGAN2Discriminator(resolution=32, c_dim=4, channel_base=256, channel_max=16).eval()
    z = torch.randn(4, 16)
    c = torch.eye(4)
    with torch.no_grad():
        images = generator(z, c)
        assert not torch.allclose(images, generator(z, c.roll(1, 0)))
        logits = discriminator(images, c)
        assert logits.shape == (4, 1)
        assert not torch.allclose(logits, discriminator(images, c.roll(1, 0)))


def test_minibatch_stddev_groups():
    layer = MinibatchStdLayer(group_size=4)
    x = torch.randn(6, 3, 2, 2)  # 6 is not a multiple of 4: groups of 3
    y = layer(x)
    assert y.shape == (6, 4, 2, 2)
    group = x.reshape(3, 2, 3, 2, 2)
    expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])
    torch.testing.assert_close(y[:2, 3, 0, 0], expected)
    torch.testing.assert_close(y[2:4, 3, 0, 0], expected)


def test_registered_options_validate_like_a_recipe():
    registries = get_registries()
    entry = registries["generator"].get("stylegan2")
    generator = build_component(registries, "generator", ComponentSpec("stylegan2", {**entry.example_options, "dtype": "bfloat16"}))
    assert generator.compute_dtype == torch.bfloat16
    from styletalker_core.registry.components import parameter_annotations

    annotation = parameter_annotations(entry)["modconv_mode"].annotation
    assert check_value("grouped", annotation, "modconv_mode") == []
    assert check_value("fast", annotation, "modconv_mode") != []


def test_second_order_gradients_for_r1_and_path_length_penalties():
    """GAN training differentiates gradients: R1 through D, path length through G."""
    torch.manual_seed(0)
    discriminator = StyleGAN2Discriminator(resolution=32, channel_base=256, channel_max=16).train()
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(discriminator(images).sum(), images, create_graph=True)
    grad.square().sum().backward()
    assert all(p.grad is not None for p in discriminator.parameters() if p.requires_grad and p.ndim > 1)
    generator = StyleGAN2Generator(resolution=32, **SMALL).train()
    ws = generator.mapping(torch.randn(2, 16)).detach().requires_grad_(True)
    images = generator.synthesis(ws, noise_mode="random")
    (grad,) = torch.autograd.grad((images * torch.randn_like(images)).sum(), ws, create_graph=True)
    grad.square().sum().backward()
    assert generator.synthesis_network.b32.conv0.weight.grad is not None
