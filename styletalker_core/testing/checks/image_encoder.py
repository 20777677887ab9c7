"""Contract of the ``image_encoder`` kind: images [b, 3, r, r] -> W+ codes [b, l, w] centred on
``latent_avg``, the out-of-domain check against a generator, gradients, checkpoint round trip."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces.image_encoder import ImageEncoder, OutOfDomainWarning, psnr
from styletalker_core.testing.factory import ComponentFactory, explained, fail, listed, require, without_gradient
from styletalker_core.testing.standins import LinearGenerator


def _images(encoder: ImageEncoder, batch: int, seed: int = 1) -> torch.Tensor:
    """[b, 3, r, r] uniform in [-1, 1]."""
    r = encoder.resolution
    return torch.rand(batch, 3, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def check_image_encoder_shapes_and_attributes(factory: ComponentFactory) -> None:
    encoder = factory().eval()
    require(isinstance(encoder, ImageEncoder), factory, f"built a {type(encoder).__qualname__}, not an ImageEncoder")
    for attribute in ("resolution", "num_ws", "w_dim"):
        require(isinstance(getattr(encoder, attribute, None), int), factory, f"attribute {attribute} must be an int")
    require(isinstance(encoder.domain, str), factory, "attribute domain must be a string")
    require(encoder.latent_avg.shape in {(encoder.w_dim,), (encoder.num_ws, encoder.w_dim)}, factory,
            f"latent_avg has shape {tuple(encoder.latent_avg.shape)}, expected (w,) or (l, w)")
    require(encoder.ood_psnr_threshold.shape == () and float(encoder.ood_psnr_threshold) == 0.0, factory,
            "a new encoder's ood_psnr_threshold must be a scalar 0 (never measured)")
    x = _images(encoder, 3)
    with torch.no_grad():
        ws = encoder.encode(x)
        single = encoder.encode(x[1:2])
        called = encoder(x)
    require(ws.shape == (3, encoder.num_ws, encoder.w_dim) and ws.dtype == torch.float32, factory,
            f"encode gave {tuple(ws.shape)} {ws.dtype}, expected (3, {encoder.num_ws}, {encoder.w_dim}) float32")
    require(bool(torch.isfinite(ws).all()), factory, "encode gave non-finite codes")
    torch.testing.assert_close(single[0], ws[1], atol=1e-5, rtol=1e-5,
                               msg=explained(factory, "in eval mode a code depends on the rest of its batch"))
    torch.testing.assert_close(called, ws, msg=explained(factory, "forward differs from encode"))


def check_image_encoder_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    encoder = factory().train()
    encoder.encode(_images(encoder, 2)).square().mean().backward()
    missing = without_gradient(encoder, trainable_only=True)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")


def check_image_encoder_latent_avg_centres_the_codes(factory: ComponentFactory) -> None:
    """set_latent_avg(w_avg + shift) shifts every code by ``shift``."""
    encoder = factory().eval()
    x = _images(encoder, 2)
    with torch.no_grad():
        before = encoder.encode(x)
        shift = torch.randn(encoder.w_dim, generator=torch.Generator().manual_seed(4))
        encoder.set_latent_avg(encoder.latent_avg.flatten()[: encoder.w_dim] + shift)
        after = encoder.encode(x)
    torch.testing.assert_close(after - before, shift.expand_as(before), atol=1e-5, rtol=1e-5,
                               msg=explained(factory, "codes are not latent_avg + offsets"))


def check_image_encoder_out_of_domain_check_warns_below_the_threshold_naming_the_domain(factory: ComponentFactory) -> None:
    """check_reference measures the reconstruction PSNR through a generator and warns (naming the
    domain) below the stored threshold, never when the threshold is 0; a non-finite threshold is refused."""
    domain = "synthetic test faces"
    encoder = (factory(domain=domain) if factory.accepts("domain") else factory()).eval()
    domain = encoder.domain
    torch.manual_seed(3)
    generator = LinearGenerator(resolution=encoder.resolution, num_ws=encoder.num_ws, w_dim=encoder.w_dim).eval()
    x = _images(encoder, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        check = encoder.check_reference(x, generator)  # threshold 0: never measured, never warns
    with torch.no_grad():
        expected = psnr(generator.synthesis(encoder.encode(x)).clamp(-1, 1), x)
    torch.testing.assert_close(check.psnr, expected,
                               msg=explained(factory, "check_reference's PSNR is not that of the clamped reconstruction"))
    require(bool(check.in_domain.all()) and check.threshold == 0.0, factory, "with threshold 0 every image must be in domain")
    require(check.ws.shape == (2, encoder.num_ws, encoder.w_dim) and check.reconstruction.shape == x.shape, factory,
            "check_reference returned codes or reconstructions of the wrong shape")
    encoder.set_ood_threshold(float(expected.max()) + 1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flagged = encoder.check_reference(x, generator)
    messages = [str(w.message) for w in caught if issubclass(w.category, OutOfDomainWarning)]
    require(messages, factory, "no OutOfDomainWarning below the threshold")
    require(domain in messages[0] and "identity" in messages[0], factory,
            f"the out-of-domain warning must name the domain ({domain!r}) and the identity: {messages[0]!r}")
    require(not bool(flagged.in_domain.any()), factory, "images below the threshold are reported in domain")
    encoder.set_ood_threshold(float(expected.min()) - 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        require(bool(encoder.check_reference(x, generator).in_domain.all()), factory,
                "images above the threshold are reported out of domain")
    try:
        encoder.set_ood_threshold(float("nan"))
    except ValueError as error:
        require("finite" in str(error), factory, f"set_ood_threshold(nan) must say the threshold must be finite: {error}")
    else:
        fail(factory, "set_ood_threshold(nan) was accepted")


def check_image_encoder_checkpoint_round_trip_keeps_codes_and_threshold(factory: ComponentFactory) -> None:
    encoder = factory(seed=7).eval()
    encoder.set_ood_threshold(21.5)
    encoder.set_latent_avg(torch.randn(encoder.w_dim))
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "encoder.safetensors", {"image_encoder": encoder})
        loaded: Any = load_checkpoint(path, factory.registries)["image_encoder"].eval()
    x = _images(encoder, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), encoder.encode(x),
                                   msg=explained(factory, "the reloaded encoder gives other codes"))
    require(float(loaded.ood_psnr_threshold) == 21.5, factory, "the reloaded encoder lost its ood_psnr_threshold")
