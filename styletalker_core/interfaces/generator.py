"""Style-based generator and its discriminator."""

from __future__ import annotations

import abc

import torch
from torch import nn


class Generator(nn.Module, abc.ABC):
    """G: latent codes -> image (StyleGAN2, StyleGAN3, or a user's backbone).

    Attributes every implementation sets in ``__init__``:
        z_dim, c_dim (0 when unconditional), w_dim, num_ws, resolution, img_channels (3).
    Buffer:
        w_avg: [w] running mean of mapped latents, the truncation centre.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    resolution: int
    img_channels: int
    w_avg: torch.Tensor

    @abc.abstractmethod
    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """z [b, z_dim], c [b, c_dim] or None -> ws [b, l, w].

        ``truncation_psi`` interpolates towards ``w_avg`` (psi 0 gives w_avg exactly) on
        the first ``truncation_cutoff`` layers (all when None). ``update_emas`` updates
        ``w_avg`` in training.
        """

    @abc.abstractmethod
    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        """ws [b, l, w] -> images [b, 3, h, w], nominally in [-1, 1] (not clamped).

        ``noise_mode``: "random" draws fresh noise, "const" uses stored buffers, "none" disables noise.
        """

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """z [b, z_dim] -> images [b, 3, h, w]."""
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi), noise_mode=noise_mode)


class Discriminator(nn.Module, abc.ABC):
    """D: image -> realness logit, for domain GAN training and optional adversarial losses.

    Attributes: resolution, c_dim, img_channels.
    """

    resolution: int
    c_dim: int
    img_channels: int

    @abc.abstractmethod
    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """images [b, 3, h, w] in [-1, 1], c [b, c_dim] or None -> logits [b, 1]."""
