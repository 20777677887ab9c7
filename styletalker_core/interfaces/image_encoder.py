"""GAN-inversion image encoder, with the out-of-domain check of reference images."""

from __future__ import annotations

import abc
import math
import warnings
from typing import TYPE_CHECKING

import attrs
import torch
from torch import nn

if TYPE_CHECKING:
    from styletalker_core.interfaces.generator import Generator


class OutOfDomainWarning(UserWarning):
    """A reference image reconstructs poorly: the generator cannot reproduce this face, so
    identity will not be preserved. Filter it with ``warnings.simplefilter``."""


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB: x, y [b, c, h, w] -> [b].

    ``data_range`` is the span of pixel values (2 for images in [-1, 1]). Identical images
    give +inf.
    """
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def threshold_from_heldout(heldout_psnr: torch.Tensor, quantile: float = 0.02, margin_db: float = 3.0) -> float:
    """The out-of-domain threshold from per-image PSNRs [n] (dB) of held-out in-domain images:
    their ``quantile`` minus ``margin_db``, so that about 2 % of in-domain images minus a 3 dB
    safety margin would be flagged by chance (none in practice)."""
    values = heldout_psnr.detach().float().flatten()
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        raise ValueError("no finite held-out PSNR to set an out-of-domain threshold from")
    return float(torch.quantile(values, quantile)) - margin_db


@attrs.frozen
class ReferenceCheck:
    """Result of :meth:`ImageEncoder.check_reference` for a batch of reference images."""

    psnr: torch.Tensor  # [b] dB, reconstruction vs input
    threshold: float  # dB; 0 when the encoder has no measured threshold (nothing is flagged)
    domain: str  # what the encoder was trained on ("" when unknown)
    in_domain: torch.Tensor  # [b] bool, psnr >= threshold
    ws: torch.Tensor  # [b, l, w] the codes, so callers need not encode twice
    reconstruction: torch.Tensor  # [b, 3, h, w] generator.synthesis(ws)


class ImageEncoder(nn.Module, abc.ABC):
    """E: image -> W+ codes of a given generator.

    Attributes: resolution (input size it expects), num_ws, w_dim, domain (name of the
    training domain, "" when unknown; implementations take it as an option).
    Buffers:
        latent_avg [w] (or [l, w]): the generator's w_avg the offsets are added to.
        ood_psnr_threshold []: reconstruction PSNR (dB) below which a reference image counts
            as out of domain; measured on held-out images by the training stage
            (:func:`threshold_from_heldout`); 0 means never measured (no warning).
    """

    resolution: int
    num_ws: int
    w_dim: int
    domain: str = ""
    latent_avg: torch.Tensor  # buffers (see above); latent_avg registered by the implementation
    ood_psnr_threshold: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("ood_psnr_threshold", torch.zeros(()))

    @abc.abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [b, 3, h, w] in [-1, 1] -> ws [b, l, w] (absolute codes, w_avg included)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)

    def set_latent_avg(self, w_avg: torch.Tensor) -> None:
        """Centre the codes on a generator's average latent: w_avg [w] or [l, w] (into ``latent_avg``)."""
        latent_avg = self.latent_avg
        latent_avg.copy_(w_avg.detach().to(latent_avg).expand_as(latent_avg))

    def set_ood_threshold(self, psnr_db: float) -> None:
        """Store the out-of-domain PSNR threshold in dB (saved with the encoder's weights)."""
        if not math.isfinite(psnr_db):
            raise ValueError(f"out-of-domain threshold must be finite, got {psnr_db}")
        self.ood_psnr_threshold.fill_(max(0.0, float(psnr_db)))

    @torch.no_grad()
    def check_reference(self, images: torch.Tensor, generator: Generator, warn: bool = True) -> ReferenceCheck:
        """Encode reference ``images`` [b, 3, h, w] in [-1, 1], render them with ``generator``
        and compare: the sampling engine calls this on every reference image.

        When a PSNR is below ``ood_psnr_threshold`` and ``warn`` is true, issues an
        :class:`OutOfDomainWarning` that names the training domain and says identity will
        not be preserved. Images are resized to the generator's resolution for the comparison.
        """
        ws = self.encode(images)
        reconstruction = generator.synthesis(ws, noise_mode="const")
        target = images
        if target.shape[-2:] != reconstruction.shape[-2:]:
            target = nn.functional.interpolate(target, size=reconstruction.shape[-2:], mode="bilinear",
                                               align_corners=False, antialias=True)
        values = psnr(reconstruction.clamp(-1, 1), target)
        threshold = float(self.ood_psnr_threshold)
        in_domain = values >= threshold
        if warn and not bool(in_domain.all()):
            worst = float(values.min())
            domain = self.domain or "its training data (domain not recorded)"
            warnings.warn(
                f"reference image reconstructs at {worst:.1f} dB PSNR, below this encoder's out-of-domain "
                f"threshold of {threshold:.1f} dB: the model was trained on {domain}, and the identity of "
                "this reference will not be preserved; use a reference from that domain, or train a "
                "generator and encoder for yours (docs/domain_pretraining.md)",
                OutOfDomainWarning,
                stacklevel=2,
            )
        return ReferenceCheck(values, threshold, self.domain, in_domain, ws, reconstruction)
