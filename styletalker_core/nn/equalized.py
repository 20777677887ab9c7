"""Layers with equalized learning rate: weights are stored N(0, 1) and scaled at run time by
1 / sqrt(fan_in) (times a learning-rate multiplier), as in ProGAN/StyleGAN."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from styletalker_core.nn.activation import ACTIVATION_GAINS, bias_act
from styletalker_core.nn.fir import binomial_filter
from styletalker_core.nn.upfirdn import conv2d_resample


class EqualizedLinear(nn.Module):
    """x [b, in_features] -> [b, out_features], y = act(x @ (g W)^T + lr * bias).

    ``lr_multiplier`` scales the effective learning rate of this layer (0.01 in mapping
    networks); ``bias_init`` is a scalar or one value per output; ``weight_init`` scales the
    initial weights (0 gives an all-zero initial map).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float | Sequence[float] = 0.0,
        weight_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        if bias:
            initial = torch.broadcast_to(torch.as_tensor(bias_init, dtype=torch.float32), (out_features,))
            self.bias = nn.Parameter(initial / lr_multiplier)
        else:
            self.register_parameter("bias", None)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b: torch.Tensor | None = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation, inplace=True)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class EqualizedConv2d(nn.Module):
    """x [b, in_channels, h, w] -> [b, out_channels, h * up / down, w * up / down].

    Same-padded k x k convolution with optional FIR up/down-sampling by 2, bias, activation
    (with its variance-preserving gain) and optional clamping of the output.
    """

    resample_filter: torch.Tensor  # buffer

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = ACTIVATION_GAINS[activation]
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", binomial_filter(resample_filter), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(
            x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding, flip_weight=(self.up == 1)
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp, inplace=True)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.weight.shape[-1]}, activation={self.activation}, up={self.up}, down={self.down}"
        )
