"""Contract of the ``generator`` kind, run for every registered generator (built-in or
third-party) built with its entry's ``example_options``."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import Generator
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

GENERATORS = list(get_registries()["generator"])
IDS = [entry.name for entry in GENERATORS]


def build(name: str, seed: int = 0) -> Generator:
    entry = get_registries()["generator"].get(name)
    torch.manual_seed(seed)
    return build_component(get_registries(), "generator", ComponentSpec(name, dict(entry.example_options)))


def inputs(generator: Generator, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, generator.z_dim, generator=rng)
    c = torch.randn(batch, generator.c_dim, generator=rng) if generator.c_dim > 0 else None
    return z, c


def test_builtin_generators_are_registered():
    assert {"stylegan2", "stylegan3"} <= set(IDS)


@pytest.mark.parametrize("entry", GENERATORS, ids=IDS)
def test_shapes_and_value_range(entry):
    generator = build(entry.name).eval()
    assert isinstance(generator, Generator)
    for attribute in ("z_dim", "c_dim", "w_dim", "num_ws", "resolution", "img_channels"):
        assert isinstance(getattr(generator, attribute), int), attribute
    assert generator.w_avg.shape == (generator.w_dim,)
    z, c = inputs(generator, 3)
    with torch.no_grad():
        ws = generator.mapping(z, c)
        images = generator.synthesis(ws, noise_mode="const")
    assert ws.shape == (3, generator.num_ws, generator.w_dim)
    r = generator.resolution
    assert images.shape == (3, generator.img_channels, r, r)
    assert images.dtype == torch.float32
    assert torch.isfinite(images).all()
    # Nominally [-1, 1]; an untrained network may overshoot, but not by orders of magnitude.
    assert 1e-3 < images.abs().mean() < 4.0
    assert torch.equal(generator(z, c), images) or torch.allclose(generator(z, c), images, atol=1e-6)


@pytest.mark.parametrize("entry", GENERATORS, ids=IDS)
def test_determinism_by_seed(entry):
    first, second = build(entry.name, seed=5).eval(), build(entry.name, seed=5).eval()
    z, c = inputs(first, 2)
    with torch.no_grad():
        const_a = first(z, c, noise_mode="const")
        const_b = second(z, c, noise_mode="const")
        torch.manual_seed(11)
        random_a = first(z, c, noise_mode="random")
        torch.manual_seed(11)
        random_b = first(z, c, noise_mode="random")
        # Each sample is rendered independently of the others in its batch.
        single = first(z[:1], None if c is None else c[:1], noise_mode="const")
    assert torch.equal(const_a, const_b)
    assert torch.equal(random_a, random_b)
    torch.testing.assert_close(single, const_a[:1], atol=1e-4, rtol=1e-4)
    other = build(entry.name, seed=6).eval()
    with torch.no_grad():
        assert not torch.allclose(other(z, c, noise_mode="const"), const_a)


@pytest.mark.parametrize("entry", GENERATORS, ids=IDS)
def test_truncation(entry):
    generator = build(entry.name).eval()
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(generator.w_dim))
    z, c = inputs(generator, 4)
    with torch.no_grad():
        full = generator.mapping(z, c)
        at_zero = generator.mapping(z, c, truncation_psi=0.0)
        half = generator.mapping(z, c, truncation_psi=0.5)
        cut = generator.mapping(z, c, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.equal(at_zero, generator.w_avg.expand_as(at_zero))
    torch.testing.assert_close(half, 0.5 * (full + generator.w_avg), atol=1e-5, rtol=1e-5)
    assert torch.equal(cut[:, :2], generator.w_avg.expand_as(cut[:, :2]))
    torch.testing.assert_close(cut[:, 2:], full[:, 2:])


@pytest.mark.parametrize("entry", GENERATORS, ids=IDS)
def test_update_emas_moves_w_avg(entry):
    generator = build(entry.name).train()
    before = generator.w_avg.clone()
    z, c = inputs(generator, 4)
    with torch.no_grad():
        generator.mapping(z, c, update_emas=True)
    assert not torch.equal(before, generator.w_avg)


@pytest.mark.parametrize("entry", GENERATORS, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    generator = build(entry.name).train()
    z, c = inputs(generator, 2)
    ws = generator.mapping(z, c)
    images = generator.synthesis(ws, noise_mode="random")
    (images * torch.randn_like(images)).sum().backward()
    missing = [name for name, p in generator.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reaches {missing}"
    assert all(torch.isfinite(p.grad).all() for p in generator.parameters())


@pytest.mark.parametrize("entry", GENERATORS, ids=IDS)
def test_checkpoint_round_trip(entry, tmp_path):
    generator = build(entry.name).eval()
    with torch.no_grad():
        generator.w_avg.copy_(torch.randn(generator.w_dim))
    path = save_checkpoint(tmp_path / "g.safetensors", {"generator": generator})
    restored = load_checkpoint(path)["generator"].eval()
    assert type(restored) is type(generator)
    assert restored.num_ws == generator.num_ws and restored.resolution == generator.resolution
    z, c = inputs(generator, 2)
    with torch.no_grad():
        assert torch.equal(restored(z, c, truncation_psi=0.7), generator(z, c, truncation_psi=0.7))
