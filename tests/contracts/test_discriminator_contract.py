"""Contract of the ``discriminator`` kind, run for every registered discriminator built with
its entry's ``example_options``."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import Discriminator
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

DISCRIMINATORS = list(get_registries()["discriminator"])
IDS = [entry.name for entry in DISCRIMINATORS]


def build(name: str, seed: int = 0) -> Discriminator:
    entry = get_registries()["discriminator"].get(name)
    torch.manual_seed(seed)
    return build_component(get_registries(), "discriminator", ComponentSpec(name, dict(entry.example_options)))


def inputs(discriminator: Discriminator, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    rng = torch.Generator().manual_seed(seed)
    r = discriminator.resolution
    images = torch.rand(batch, discriminator.img_channels, r, r, generator=rng) * 2 - 1
    c = torch.randn(batch, discriminator.c_dim, generator=rng) if discriminator.c_dim > 0 else None
    return images, c


def test_builtin_discriminators_are_registered():
    assert "stylegan2" in IDS


@pytest.mark.parametrize("entry", DISCRIMINATORS, ids=IDS)
def test_shapes_and_determinism(entry):
    discriminator = build(entry.name).eval()
    assert isinstance(discriminator, Discriminator)
    images, c = inputs(discriminator, 4)
    with torch.no_grad():
        logits = discriminator(images, c)
        again = build(entry.name).eval()(images, c)
    assert logits.shape == (4, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert torch.equal(logits, again)
    with torch.no_grad():
        assert not torch.equal(discriminator(-images, c), logits)


@pytest.mark.parametrize("entry", DISCRIMINATORS, ids=IDS)
def test_gradients_reach_every_parameter_and_the_images(entry):
    discriminator = build(entry.name).train()
    images, c = inputs(discriminator, 4)
    images.requires_grad_(True)
    discriminator(images, c).sum().backward()
    missing = [name for name, p in discriminator.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reaches {missing}"
    assert images.grad is not None and torch.any(images.grad != 0)


@pytest.mark.parametrize("entry", DISCRIMINATORS, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    discriminator = build(entry.name).eval()
    path = save_checkpoint(tmp_path / "d.safetensors", {"discriminator": discriminator})
    restored = load_checkpoint(path)["discriminator"].eval()
    images, c = inputs(discriminator, 4)
    with torch.no_grad():
        assert torch.equal(restored(images, c), discriminator(images, c))
