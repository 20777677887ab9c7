"""Contract of the ``generator`` and ``discriminator`` kinds.

Generator: W+ codes [b, l, w] -> images [b, c, r, r] with mapping, truncation around ``w_avg``,
per-sample independence, determinism by seed, gradients to every parameter, checkpoint round trip.
Discriminator: images [b, c, r, r] (and labels [b, c_dim]) -> logits [b, 1].
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import Discriminator, Generator
from styletalker_core.testing.factory import ComponentFactory, explained, listed, require, without_gradient


def _generator_inputs(generator: Generator, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z [b, z_dim], c [b, c_dim] or None)."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, generator.z_dim, generator=rng)
    c = torch.randn(batch, generator.c_dim, generator=rng) if generator.c_dim > 0 else None
    return z, c


def check_generator_shapes_and_value_range(factory: ComponentFactory) -> None:
    """Integer size attributes, ``w_avg`` [w], mapping to [b, l, w], images [b, c, r, r] float32 of sane magnitude."""
    generator = factory().eval()
    require(isinstance(generator, Generator), factory, f"built a {type(generator).__qualname__}, not a Generator")
    for attribute in ("z_dim", "c_dim", "w_dim", "num_ws", "resolution", "img_channels"):
        require(isinstance(getattr(generator, attribute, None), int), factory, f"attribute {attribute} must be an int")
    require(generator.w_avg.shape == (generator.w_dim,), factory,
            f"w_avg has shape {tuple(generator.w_avg.shape)}, expected ({generator.w_dim},)")
    z, c = _generator_inputs(generator, 3)
    with torch.no_grad():
        ws = generator.mapping(z, c)
        images = generator.synthesis(ws, noise_mode="const")
        called = generator(z, c)
    require(ws.shape == (3, generator.num_ws, generator.w_dim), factory,
            f"mapping gave {tuple(ws.shape)}, expected (3, num_ws={generator.num_ws}, w_dim={generator.w_dim})")
    r = generator.resolution
    require(images.shape == (3, generator.img_channels, r, r), factory,
            f"synthesis gave {tuple(images.shape)}, expected (3, {generator.img_channels}, {r}, {r})")
    require(images.dtype == torch.float32, factory, f"images are {images.dtype}, expected float32")
    require(torch.isfinite(images).all(), factory, "synthesis gave non-finite pixels")
    # Nominally [-1, 1]; an untrained network may overshoot, but not by orders of magnitude.
    magnitude = float(images.abs().mean())
    require(1e-3 < magnitude < 4.0, factory, f"mean |pixel| {magnitude:.3g} is outside (1e-3, 4) for images in [-1, 1]")
    require(torch.allclose(called, images, atol=1e-6), factory, "forward(z, c) differs from synthesis(mapping(z, c))")


def check_generator_determinism_by_seed(factory: ComponentFactory) -> None:
    """Same seed, same images; noise_mode='random' follows torch's seed; samples independent of their batch."""
    first, second = factory(seed=5).eval(), factory(seed=5).eval()
    z, c = _generator_inputs(first, 2)
    with torch.no_grad():
        const_a = first(z, c, noise_mode="const")
        const_b = second(z, c, noise_mode="const")
        torch.manual_seed(11)
        random_a = first(z, c, noise_mode="random")
        torch.manual_seed(11)
        random_b = first(z, c, noise_mode="random")
        single = first(z[:1], None if c is None else c[:1], noise_mode="const")
    require(torch.equal(const_a, const_b), factory, "two instances built with the same seed render different images")
    require(torch.equal(random_a, random_b), factory, "noise_mode='random' is not reproducible from torch.manual_seed")
    torch.testing.assert_close(single, const_a[:1], atol=1e-4, rtol=1e-4,
                               msg=explained(factory, "a sample depends on the rest of its batch"))
    other = factory(seed=6).eval()
    with torch.no_grad():
        require(not torch.allclose(other(z, c, noise_mode="const"), const_a), factory,
                "instances built with different seeds render the same images")


def check_generator_truncation(factory: ComponentFactory) -> None:
    """psi = 0 gives w_avg, psi = 0.5 the midpoint, truncation_cutoff truncates only the first layers."""
    generator = factory().eval()
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(generator.w_dim))
    z, c = _generator_inputs(generator, 4)
    with torch.no_grad():
        full = generator.mapping(z, c)
        at_zero = generator.mapping(z, c, truncation_psi=0.0)
        half = generator.mapping(z, c, truncation_psi=0.5)
        cut = generator.mapping(z, c, truncation_psi=0.0, truncation_cutoff=2)
    require(torch.equal(at_zero, generator.w_avg.expand_as(at_zero)), factory, "truncation_psi=0 does not give w_avg")
    torch.testing.assert_close(half, 0.5 * (full + generator.w_avg), atol=1e-5, rtol=1e-5,
                               msg=explained(factory, "truncation_psi=0.5 is not halfway to w_avg"))
    require(torch.equal(cut[:, :2], generator.w_avg.expand_as(cut[:, :2])), factory,
            "truncation_cutoff=2 leaves the first two layers untruncated")
    torch.testing.assert_close(cut[:, 2:], full[:, 2:],
                               msg=explained(factory, "truncation_cutoff=2 changed layers past the cutoff"))


def check_generator_update_emas_moves_w_avg(factory: ComponentFactory) -> None:
    """mapping(update_emas=True) in train mode tracks the average code."""
    generator = factory().train()
    before = generator.w_avg.clone()
    z, c = _generator_inputs(generator, 4)
    with torch.no_grad():
        generator.mapping(z, c, update_emas=True)
    require(not torch.equal(before, generator.w_avg), factory, "mapping(update_emas=True) did not move w_avg")


def check_generator_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    generator = factory().train()
    z, c = _generator_inputs(generator, 2)
    images = generator.synthesis(generator.mapping(z, c), noise_mode="random")
    (images * torch.randn_like(images)).sum().backward()
    missing = without_gradient(generator)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")
    require(all(torch.isfinite(p.grad).all() for p in generator.parameters()), factory, "non-finite gradients")


def check_generator_checkpoint_round_trip(factory: ComponentFactory) -> None:
    """save_checkpoint / load_checkpoint rebuild the same class, sizes and images (w_avg included)."""
    generator = factory().eval()
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(generator.w_dim))
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "g.safetensors", {"generator": generator})
        restored = load_checkpoint(path, factory.registries)["generator"].eval()
    require(type(restored) is type(generator), factory, f"the checkpoint rebuilt a {type(restored).__qualname__}")
    require(restored.num_ws == generator.num_ws and restored.resolution == generator.resolution, factory,
            "the checkpoint rebuilt other sizes")
    z, c = _generator_inputs(generator, 2)
    with torch.no_grad():
        require(torch.equal(restored(z, c, truncation_psi=0.7), generator(z, c, truncation_psi=0.7)), factory,
                "the reloaded generator renders other images")


def _discriminator_inputs(discriminator: Discriminator, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images [b, c, r, r] in [-1, 1], labels [b, c_dim] or None)."""
    rng = torch.Generator().manual_seed(seed)
    r = discriminator.resolution
    images = torch.rand(batch, discriminator.img_channels, r, r, generator=rng) * 2 - 1
    c = torch.randn(batch, discriminator.c_dim, generator=rng) if discriminator.c_dim > 0 else None
    return images, c


def check_discriminator_shapes_and_determinism(factory: ComponentFactory) -> None:
    discriminator = factory().eval()
    require(isinstance(discriminator, Discriminator), factory,
            f"built a {type(discriminator).__qualname__}, not a Discriminator")
    images, c = _discriminator_inputs(discriminator, 4)
    with torch.no_grad():
        logits = discriminator(images, c)
        again = factory().eval()(images, c)
        flipped = discriminator(-images, c)
    require(logits.shape == (4, 1) and logits.dtype == torch.float32, factory,
            f"logits are {tuple(logits.shape)} {logits.dtype}, expected (4, 1) float32")
    require(torch.isfinite(logits).all(), factory, "non-finite logits")
    require(torch.equal(logits, again), factory, "two instances built with the same seed give different logits")
    require(not torch.equal(flipped, logits), factory, "the logits do not depend on the images")


def check_discriminator_gradients_reach_every_parameter_and_the_images(factory: ComponentFactory) -> None:
    discriminator = factory().train()
    images, c = _discriminator_inputs(discriminator, 4)
    images.requires_grad_(True)
    discriminator(images, c).sum().backward()
    missing = without_gradient(discriminator)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")
    require(images.grad is not None and bool(torch.any(images.grad != 0)), factory,
            "no gradient reaches the input images (R1 regularisation needs it)")


def check_discriminator_checkpoint_round_trip(factory: ComponentFactory) -> None:
    discriminator = factory().eval()
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "d.safetensors", {"discriminator": discriminator})
        restored = load_checkpoint(path, factory.registries)["discriminator"].eval()
    images, c = _discriminator_inputs(discriminator, 4)
    with torch.no_grad():
        require(torch.equal(restored(images, c), discriminator(images, c)), factory,
                "the reloaded discriminator gives other logits")
