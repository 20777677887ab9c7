"""Map-to-style heads and the feature pyramid of the pSp / e4e encoder.

Axis letters: b batch, c channels, h/w height/width, w latent width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (StyleGAN): weights stored at unit scale,
    multiplied by ``lr_mul / sqrt(in_features)`` at run time. x [..., in] -> [..., out]."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class MapToStyle(nn.Module):
    """pSp's GradualStyleBlock: strided 3x3 convs down to 1x1, then a linear layer.

    features [b, c, s, s] -> code [b, w]; ``spatial`` = s (a power of two), log2(s) convs of
    ``hidden`` channels (pSp uses hidden = w).
    """

    def __init__(self, in_channels: int, w_dim: int, spatial: int, hidden: int = 0) -> None:
        super().__init__()
        if spatial < 1 or spatial & (spatial - 1):
            raise ValueError(f"map-to-style head needs a power-of-two feature size, got {spatial}")
        self.hidden = hidden or w_dim
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(max(1, int(math.log2(spatial)))):
            layers += [nn.Conv2d(channels, self.hidden, kernel_size=3, stride=2, padding=1), nn.LeakyReLU()]
            channels = self.hidden
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(self.hidden, w_dim, lr_mul=1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.convs(features)
        return self.linear(x.reshape(x.shape[0], self.hidden, -1).mean(-1))


def upsample_add(coarse: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """Feature pyramid merge: bilinear upsampling of ``coarse`` [b, c, s, s] to ``lateral``'s size, plus ``lateral``."""
    return F.interpolate(coarse, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral
