"""The convolutional trunk of an image encoder (kind ``image_encoder_backbone``)."""

from __future__ import annotations

import abc

import torch
from torch import nn


class ImageEncoderBackbone(nn.Module, abc.ABC):
    """images [b, 3, h, w] -> (c1, c2, c3): three feature maps from fine to coarse, the inputs of an
    encoder's feature pyramid.

    c_k is [b, out_channels[k], h / strides[k], w / strides[k]] for h and w divisible by strides[2];
    the strides are powers of two, each twice the previous (c2 is half the size of c1, c3 half of c2).

    Attributes: out_channels (three ints), strides (three ints). An encoder builds its backbone
    with the sizes it knows (the e4e encoder: ``stem_channels``, ``channels``, ``units``,
    ``se_reduction``); a factory declares the ones it uses (the others are not passed).
    """

    out_channels: tuple[int, int, int]
    strides: tuple[int, int, int]

    @abc.abstractmethod
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images [b, 3, h, w] in [-1, 1] -> (c1, c2, c3)."""
