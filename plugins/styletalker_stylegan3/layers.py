"""StyleGAN3 synthesis input (Fourier features) and the alias-free synthesis layer.

Parameter and buffer names follow NVlabs ``networks_stylegan3.py`` (``affine``, ``weight``,
``bias``, ``magnitude_ema``, ``up_filter``, ``down_filter``; input: ``freqs``, ``phases``,
``transform``), so converted checkpoints map one to one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.nn import EqualizedLinear, filtered_lrelu, jinc_lowpass, kaiser_lowpass, modulated_conv2d


class SynthesisInput(nn.Module):
    """w [b, w_dim] -> Fourier features [b, channels, size, size].

    ``channels`` sinusoids with random frequencies inside a disc of radius ``bandwidth``
    (cycles per image), sampled at ``sampling_rate`` on a ``size`` grid centred on the image.
    The affine layer turns w into a rotation and translation of the features; ``transform``
    [3, 3] is a user transform (identity by default; the equivariance test rotates it).
    """

    transform: torch.Tensor  # buffer
    freqs: torch.Tensor  # buffer
    phases: torch.Tensor  # buffer

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = size
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand(channels) - 0.5
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualizedLinear(w_dim, 4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0])
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        batch = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty), up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device)
        rotation = eye.repeat(batch, 1, 1)
        rotation[:, 0, 0] = t[:, 0]
        rotation[:, 0, 1] = -t[:, 1]
        rotation[:, 1, 0] = t[:, 1]
        rotation[:, 1, 1] = t[:, 0]
        translation = eye.repeat(batch, 1, 1)
        translation[:, 0, 2] = -t[:, 2]
        translation[:, 1, 2] = -t[:, 3]
        transforms = rotation @ translation @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [b, c, 2]
        # Dampen frequencies pushed out of band by the user transform.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.zeros(1, 2, 3, device=w.device)
        theta[0, 0, 0] = 0.5 * self.size / self.sampling_rate
        theta[0, 1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, self.size, self.size], align_corners=False)  # [1, h, w, 2]
        x = torch.einsum("hwk,bck->bhwc", grid[0], freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2).contiguous()


class SynthesisLayer(nn.Module):
    """x [b, in_channels, in_size, in_size], w [b, w_dim] -> [b, out_channels, out_size, out_size].

    Modulated convolution (input normalised by the running magnitude ``magnitude_ema``),
    then the filtered leaky ReLU evaluated at ``lrelu_upsampling`` times the higher of the
    input and output sampling rates, between Kaiser low-pass filters (the down filter is a
    radial jinc in config R, except for critically sampled layers). ToRGB is the last layer:
    1x1, no demodulation, no nonlinearity.
    """

    magnitude_ema: torch.Tensor  # buffer
    up_filter: torch.Tensor  # buffer
    down_filter: torch.Tensor  # buffer

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,
        in_channels: int,
        out_channels: int,
        in_size: int,
        out_size: int,
        in_sampling_rate: int,
        out_sampling_rate: int,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        use_radial_filters: bool = False,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
        modconv_mode: str = "auto",
    ) -> None:
        super().__init__()
        self.is_torgb = is_torgb
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = in_size
        self.out_size = out_size
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.modconv_mode = modconv_mode
        self.conv_kernel = 1 if is_torgb else conv_kernel
        tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up_factor = int(round(tmp_sampling_rate / in_sampling_rate))
        self.down_factor = int(round(tmp_sampling_rate / out_sampling_rate))
        if in_sampling_rate * self.up_factor != tmp_sampling_rate or out_sampling_rate * self.down_factor != tmp_sampling_rate:
            raise ValueError("stylegan3 layer: sampling rates must divide the nonlinearity's rate")
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        up_filter = kaiser_lowpass(up_taps, in_cutoff, in_half_width * 2, tmp_sampling_rate) if up_taps > 1 else None
        if down_taps == 1:
            down_filter = None
        elif self.down_radial:
            down_filter = jinc_lowpass(down_taps, out_cutoff, out_half_width * 2, tmp_sampling_rate)
        else:
            down_filter = kaiser_lowpass(down_taps, out_cutoff, out_half_width * 2, tmp_sampling_rate)
        self.register_buffer("up_filter", up_filter)
        self.register_buffer("down_filter", down_filter)
        # Padding so that the output lands on the out_size grid (the symmetric sample placement
        # of the StyleGAN3 paper, appendix C.3).
        pad_total = (out_size - 1) * self.down_factor + 1
        pad_total -= (in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo), int(pad_hi), int(pad_lo), int(pad_hi)]

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        x = modulated_conv2d(  # the bias is added in the convolution's output pass
            x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
            input_gain=input_gain, mode=self.modconv_mode, bias=self.bias,
        )
        gain = 1.0 if self.is_torgb else math.sqrt(2)
        slope = 1.0 if self.is_torgb else 0.2
        # float32 filter taps: upfirdn2d casts them to the computing dtype itself (on CPU it filters
        # low-precision activations in float32)
        return filtered_lrelu(
            x, self.up_filter, self.down_filter, None, up=self.up_factor, down=self.down_factor, padding=self.padding,
            gain=gain, slope=slope, clamp=self.conv_clamp,
        )


def layer_schedule(
    resolution: int,
    img_channels: int,
    channel_base: int,
    channel_max: int,
    num_layers: int,
    num_critical: int,
    first_cutoff: float,
    first_stopband: float,
    last_stopband_rel: float,
    margin_size: int,
) -> dict[str, np.ndarray]:
    """Per-layer cutoffs, stopbands, sampling rates, half widths, sizes and channels (index 0
    is the input; 1..num_layers the layers; the last is ToRGB), as in the StyleGAN3 paper."""
    if num_layers <= num_critical:
        raise ValueError(f"stylegan3: num_layers ({num_layers}) must exceed num_critical ({num_critical})")
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates, half_widths=half_widths,
                sizes=sizes, channels=channels)
