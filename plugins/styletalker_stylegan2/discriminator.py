"""The StyleGAN2 discriminator (resnet architecture), as in NVlabs stylegan2-ada-pytorch / stylegan3.

Parameter names follow NVlabs for the blocks ``b{r}.fromrgb/conv0/conv1/skip`` and the label
``mapping.*`` (projection discriminator, when c_dim > 0). The last block is ``epilogue.conv/fc/out``
here; NVlabs registers it as ``b4`` (class ``DiscriminatorEpilogue``), and the NVlabs converter
renames it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from styletalker_core.interfaces import Discriminator
from styletalker_core.nn import EqualizedConv2d, EqualizedLinear, MappingNetwork
from styletalker_core.nn.style_generator import compute_dtype, memory_format
from styletalker_stylegan2.generator import channels_per_resolution, check_resolution


class DiscriminatorBlock(nn.Module):
    """x [b, tmp_channels, r, r] (or None), img [b, c, r, r] -> [b, out_channels, r / 2, r / 2].

    The first block reads the image through a 1x1 ``fromrgb``; every block is two 3x3 convs
    (the second down-sampling) plus a down-sampling 1x1 skip, summed with gain sqrt(1/2).
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        img_channels: int,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        if in_channels == 0:
            self.fromrgb = EqualizedConv2d(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = EqualizedConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(
            tmp_channels, out_channels, 3, activation="lrelu", down=2, resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        self.skip = EqualizedConv2d(tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y.add_(x) if not torch.is_grad_enabled() else y + x


class MinibatchStdLayer(nn.Module):
    """x [b, c, h, w] -> [b, c + num_channels, h, w]: appends the standard deviation of features
    across groups of ``group_size`` samples (the largest divisor of b not above group_size)."""

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """x [b, c, 4, 4] -> logits [b, 1] (projected onto the label embedding when cmap_dim > 0)."""

    def __init__(
        self, in_channels: int, cmap_dim: int, resolution: int, mbstd_group_size: int, mbstd_num_channels: int,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = EqualizedConv2d(
            in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp
        )
        self.fc = EqualizedLinear(in_channels * resolution * resolution, in_channels, activation="lrelu")
        self.out = EqualizedLinear(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1).to(torch.float32))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert cmap is not None  # a conditional discriminator maps its label
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class StyleGAN2Discriminator(Discriminator):
    """StyleGAN2 residual discriminator: images [b, c, r, r] in [-1, 1] (+ labels c [b, c_dim]) -> logits [b, 1].

    Options: ``resolution``, ``img_channels``, ``c_dim`` (projection discriminator when > 0,
    with a label ``mapping_layers``-layer mapping network to ``cmap_dim``, default the 4x4
    feature maps), feature maps ``min(channel_base / r, channel_max)``, minibatch-stddev group
    size and channels, ``conv_clamp``, ``resample_filter``; speed: ``dtype``, ``channels_last`` (None: automatic).
    """

    def __init__(
        self,
        resolution: int = 256,
        img_channels: int = 3,
        c_dim: int = 0,
        channel_base: int = 32768,
        channel_max: int = 512,
        cmap_dim: int | None = None,
        mapping_layers: int = 8,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        conv_clamp: float | None = None,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        check_resolution(resolution, "stylegan2 discriminator")
        self.resolution = resolution
        self.img_channels = img_channels
        self.c_dim = c_dim
        self.compute_dtype = compute_dtype(dtype, "stylegan2 discriminator")
        self.channels_last = channels_last
        channels = channels_per_resolution(resolution, channel_base, channel_max)
        self.block_resolutions = sorted((r for r in channels if r > 4), reverse=True)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < resolution else 0, channels[res], channels[res // 2], img_channels,
                resample_filter=resample_filter, conv_clamp=conv_clamp,
            )
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, None, num_layers=mapping_layers, w_avg_beta=None)
        self.epilogue = DiscriminatorEpilogue(
            channels[4], cmap_dim, 4, mbstd_group_size, mbstd_num_channels, conv_clamp=conv_clamp
        )

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1:] != (self.img_channels, self.resolution, self.resolution):
            raise ValueError(
                f"stylegan2 discriminator: images must be [b, {self.img_channels}, {self.resolution}, "
                f"{self.resolution}], got {tuple(images.shape)}"
            )
        layout = memory_format(self.channels_last, images.shape[0])
        img = images.to(dtype=self.compute_dtype, memory_format=layout)
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        assert x is not None  # there is at least one block
        return self.epilogue(x.to(torch.float32), cmap)
