"""StyleGAN2 synthesis layers: modulated 3x3 convolution with noise, ToRGB, and the block of both.

Parameter and buffer names follow NVlabs ``networks_stylegan2.py`` so that converted
checkpoints read naturally (``b64.conv0.affine.weight``, ``b64.torgb.bias`` ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from styletalker_core.nn import EqualizedLinear, bias_act, binomial_filter, modulated_conv2d, upsample2d


class SynthesisLayer(nn.Module):
    """x [b, in_channels, r / up, r / up], w [b, w_dim] -> [b, out_channels, r, r].

    Modulated, demodulated k x k convolution (optionally up-sampling by 2 first), plus
    per-pixel noise scaled by a learned strength, bias and leaky ReLU.
    """

    resample_filter: torch.Tensor  # buffer
    noise_const: torch.Tensor  # buffer

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        modconv_mode: str = "auto",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.modconv_mode = modconv_mode
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", binomial_filter(resample_filter), persistent=False)
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        # bias and the activation's gain are folded into the convolution's output pass:
        # clamp(lrelu((conv + noise + bias) * gain)) with the gain first (lrelu is positively homogeneous)
        x = modulated_conv2d(
            x, self.weight, styles, up=self.up, padding=self.padding, resample_filter=self.resample_filter,
            flip_weight=(self.up == 1), noise=noise, mode=self.modconv_mode, bias=self.bias,
            output_gain=math.sqrt(2) * gain,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, None, act="lrelu", gain=1.0, clamp=clamp, inplace=True)


class ToRGBLayer(nn.Module):
    """x [b, in_channels, r, r], w [b, w_dim] -> image contribution [b, img_channels, r, r]
    (modulated 1x1 convolution without demodulation, plus bias)."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None,
        modconv_mode: str = "auto",
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.modconv_mode = modconv_mode
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, mode=self.modconv_mode, bias=self.bias)
        return bias_act(x, None, clamp=self.conv_clamp, inplace=True)


class SynthesisBlock(nn.Module):
    """One resolution of the skip architecture.

    (x [b, in_channels, r / 2, r / 2] or None for the 4x4 block, img [b, c, r / 2, r / 2] or None,
    ws [b, num_conv + num_torgb, w_dim]) -> (x [b, out_channels, r, r], img [b, c, r, r]).
    The 4x4 block starts from a learned constant; later blocks up-sample in conv0.
    """

    resample_filter: torch.Tensor  # buffer

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        use_noise: bool = True,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        modconv_mode: str = "auto",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.register_buffer("resample_filter", binomial_filter(resample_filter), persistent=False)
        common: dict[str, Any] = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise, resample_filter=resample_filter,
                      conv_clamp=conv_clamp, modconv_mode=modconv_mode)
        self.num_conv = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **common)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common)
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp, modconv_mode=modconv_mode)
        self.num_torgb = 1

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        dtype: torch.dtype = torch.float32,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = x.contiguous(memory_format=memory_format)
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode)
        else:
            assert x is not None  # a later block gets the previous block's features
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode)
        y = self.torgb(x, ws[:, self.num_conv]).to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
            y = img.add_(y) if not torch.is_grad_enabled() else img + y
        return x, y
