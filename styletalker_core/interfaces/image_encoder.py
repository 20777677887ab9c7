"""GAN-inversion image encoder."""

from __future__ import annotations

import abc

import torch
from torch import nn


class ImageEncoder(nn.Module, abc.ABC):
    """E: image -> W+ codes of a given generator.

    Attributes: resolution (input size it expects), num_ws, w_dim.
    Buffer: latent_avg [w] (or [l, w]), the generator's w_avg the offsets are added to.
    """

    resolution: int
    num_ws: int
    w_dim: int

    @abc.abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [b, 3, h, w] in [-1, 1] -> ws [b, l, w] (absolute codes, w_avg included)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)
