"""Contract of the ``image_encoder`` kind, run for every registered image encoder (built-in or
third-party) built with its entry's ``example_options``."""

from __future__ import annotations

import warnings

import pytest
import torch

from conftest import TinyGenerator
from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces.image_encoder import ImageEncoder, OutOfDomainWarning, psnr
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component


pytestmark = pytest.mark.usefixtures("single_thread")


ENCODERS = list(get_registries()["image_encoder"])
IDS = [entry.name for entry in ENCODERS]


def build(name: str, seed: int = 0, **extra) -> ImageEncoder:
    entry = get_registries()["image_encoder"].get(name)
    torch.manual_seed(seed)
    return build_component(get_registries(), "image_encoder", ComponentSpec(name, {**entry.example_options, **extra}))


def images(encoder: ImageEncoder, batch: int, seed: int = 1) -> torch.Tensor:
    r = encoder.resolution
    return torch.rand(batch, 3, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def matching_generator(encoder: ImageEncoder) -> TinyGenerator:
    torch.manual_seed(3)
    return TinyGenerator(resolution=encoder.resolution, num_ws=encoder.num_ws, w_dim=encoder.w_dim)


def test_builtin_encoders_are_registered():
    assert "e4e" in IDS


@pytest.mark.parametrize("entry", ENCODERS, ids=IDS)
def test_shapes_and_attributes(entry):
    encoder = build(entry.name).eval()
    assert isinstance(encoder, ImageEncoder)
    for attribute in ("resolution", "num_ws", "w_dim"):
        assert isinstance(getattr(encoder, attribute), int), attribute
    assert isinstance(encoder.domain, str)
    assert encoder.latent_avg.shape in {(encoder.w_dim,), (encoder.num_ws, encoder.w_dim)}
    assert encoder.ood_psnr_threshold.shape == () and float(encoder.ood_psnr_threshold) == 0.0
    x = images(encoder, 3)
    with torch.no_grad():
        ws = encoder.encode(x)
        single = encoder.encode(x[1:2])
    assert ws.shape == (3, encoder.num_ws, encoder.w_dim) and ws.dtype == torch.float32
    assert bool(torch.isfinite(ws).all())
    torch.testing.assert_close(single[0], ws[1], atol=1e-5, rtol=1e-5)  # eval mode: no batch coupling
    torch.testing.assert_close(encoder(x), ws)


@pytest.mark.parametrize("entry", ENCODERS, ids=IDS)
def test_gradients_reach_every_parameter(entry):
    encoder = build(entry.name).train()
    encoder.encode(images(encoder, 2)).square().mean().backward()
    missing = [name for name, p in encoder.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches {missing[:5]}"


@pytest.mark.parametrize("entry", ENCODERS, ids=IDS)
def test_latent_avg_centres_the_codes(entry):
    encoder = build(entry.name).eval()
    x = images(encoder, 2)
    with torch.no_grad():
        before = encoder.encode(x)
        shift = torch.randn(encoder.w_dim, generator=torch.Generator().manual_seed(4))
        encoder.set_latent_avg(encoder.latent_avg.flatten()[: encoder.w_dim] + shift)
        after = encoder.encode(x)
    torch.testing.assert_close(after - before, shift.expand_as(before), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("entry", ENCODERS, ids=IDS)
def test_out_of_domain_check_warns_below_the_threshold_naming_the_domain(entry):
    encoder = build(entry.name, domain="synthetic test faces").eval()
    generator = matching_generator(encoder).eval()
    x = images(encoder, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        check = encoder.check_reference(x, generator)  # threshold 0: never measured, never warns
    with torch.no_grad():
        expected = psnr(generator.synthesis(encoder.encode(x)).clamp(-1, 1), x)
    torch.testing.assert_close(check.psnr, expected)
    assert bool(check.in_domain.all()) and check.threshold == 0.0
    assert check.ws.shape == (2, encoder.num_ws, encoder.w_dim) and check.reconstruction.shape == x.shape
    encoder.set_ood_threshold(float(expected.max()) + 1.0)
    with pytest.warns(OutOfDomainWarning, match="synthetic test faces") as record:
        flagged = encoder.check_reference(x, generator)
    assert "identity" in str(record[0].message)
    assert not bool(flagged.in_domain.any())
    encoder.set_ood_threshold(float(expected.min()) - 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        assert bool(encoder.check_reference(x, generator).in_domain.all())
    with pytest.raises(ValueError, match="finite"):
        encoder.set_ood_threshold(float("nan"))


@pytest.mark.parametrize("entry", ENCODERS, ids=IDS)
def test_checkpoint_round_trip_keeps_codes_and_threshold(entry, tmp_path):
    encoder = build(entry.name, seed=7).eval()
    encoder.set_ood_threshold(21.5)
    encoder.set_latent_avg(torch.randn(encoder.w_dim))
    path = save_checkpoint(tmp_path / "encoder.safetensors", {"image_encoder": encoder})
    loaded = load_checkpoint(path)["image_encoder"].eval()
    x = images(encoder, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), encoder.encode(x))
    assert float(loaded.ood_psnr_threshold) == 21.5
