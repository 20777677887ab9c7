"""The StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), skip architecture, as in NVlabs stylegan2-ada-pytorch / stylegan3."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from styletalker_core.nn import MappingNetwork
from styletalker_core.nn.style_generator import StyleGenerator, compute_dtype, memory_format
from styletalker_stylegan2.layers import SynthesisBlock


def channels_per_resolution(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Feature maps of each block, 4 .. resolution: min(channel_base / r, channel_max)."""
    return {4 * 2 ** i: min(channel_base // (4 * 2 ** i), channel_max) for i in range(int(math.log2(resolution)) - 1)}


def check_resolution(resolution: int, owner: str) -> None:
    if resolution < 8 or resolution > 4096 or resolution & (resolution - 1):
        raise ValueError(f"{owner}: resolution must be a power of two from 8 to 4096, got {resolution}")


class StyleGAN2Generator(StyleGenerator):
    """StyleGAN2 (skip architecture): z [b, z_dim] -> w [b, num_ws, w_dim] -> images [b, c, r, r].

    Options: ``resolution`` (power of two), ``z_dim``/``w_dim``, ``c_dim`` (labels, 0 for
    none), feature maps ``min(channel_base / r, channel_max)`` per resolution r, the mapping
    network's ``mapping_layers``, ``mapping_lr_multiplier`` and ``w_avg_beta``, ``conv_clamp``
    (NVlabs uses 256), ``resample_filter`` taps, ``use_noise``. Speed: ``modconv_mode``
    ('auto', 'grouped' or 'activation', see :mod:`styletalker_core.nn.modulated`), ``dtype``
    of the synthesis convolutions ('float32', 'bfloat16', 'float16'; images are float32) and
    ``channels_last`` memory format (None: automatic, which for StyleGAN2 is channels-last at every
    batch size: with activation-scaled modulation it was the fastest on CPU at batch 1 too, 1.2x in
    float32 and 1.8x in bfloat16 at 256 px, measured on one thread of a loaded 2-core machine). num_ws = 2 log2(resolution) - 2.

    State dict: ``mapping_network.*`` and ``synthesis_network.b{r}.*`` with NVlabs' names below
    those prefixes (the interface's ``mapping``/``synthesis`` are methods).
    """

    def __init__(
        self,
        resolution: int = 256,
        z_dim: int = 512,
        w_dim: int = 512,
        c_dim: int = 0,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        mapping_layers: int = 8,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
        conv_clamp: float | None = None,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        use_noise: bool = True,
        modconv_mode: Literal["auto", "grouped", "activation"] = "auto",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        check_resolution(resolution, "stylegan2 generator")
        self.resolution = resolution
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.c_dim = c_dim
        self.img_channels = img_channels
        self.compute_dtype = compute_dtype(dtype, "stylegan2 generator")
        self.channels_last = channels_last
        channels = channels_per_resolution(resolution, channel_base, channel_max)
        self.block_resolutions = sorted(channels)
        num_ws = 0
        blocks = torch.nn.Module()
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels, use_noise=use_noise,
                resample_filter=resample_filter, conv_clamp=conv_clamp, modconv_mode=modconv_mode,
            )
            setattr(blocks, f"b{res}", block)
            num_ws += block.num_conv
        self.num_ws = num_ws + 1  # the last block's ToRGB has its own w
        self.synthesis_network = blocks
        self.mapping_network = MappingNetwork(
            z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta,
        )

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        self.check_synthesis_inputs(ws, noise_mode)
        ws = ws.to(torch.float32)
        x = img = None
        index = 0
        for res in self.block_resolutions:
            block = getattr(self.synthesis_network, f"b{res}")
            block_ws = ws.narrow(1, index, block.num_conv + block.num_torgb)
            index += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode, dtype=self.compute_dtype,
                           memory_format=memory_format(True if self.channels_last is None else self.channels_last,
                                                       ws.shape[0]))
        assert img is not None  # every block adds its RGB
        return img
