"""Modulated (and demodulated) convolution, the core of style-based synthesis layers.

Each sample b scales the kernel's input channels by its styles s[b] (modulation) and, with
demodulation, rescales every output filter to unit L2 norm. Two exact ways to compute it,
neither looping over the batch in Python:

- "grouped": build one kernel per sample and run a grouped convolution (groups = batch);
  cheapest at batch 1, where it is a single plain convolution.
- "activation": scale the input by s, convolve with the one shared kernel, scale the output
  by the demodulation coefficients; one large convolution, fastest for batches > 1 on CPU.

"auto" picks "grouped" for batch 1 in the contiguous layout and "activation" otherwise: with
channels-last activations at batch 1 the per-sample kernel costs a layout reorder of the
weights and is slower on CPU than scaling the activations (measured on StyleGAN2 at 256 px).
"""

from __future__ import annotations

import torch

from styletalker_core.nn.upfirdn import conv2d_resample

MODES = ("auto", "grouped", "activation")


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """weight [o, i, kh, kw], styles [b, i] -> [b, o] = 1 / ||weight[o] * styles[b]||_2.

    Computed as (s^2) @ (sum over taps of w^2)^T, which never forms the per-sample kernels.
    """
    if torch.is_autocast_enabled(styles.device.type):
        # a sum of squares over i * k * k terms: kept in float32 under mixed-precision training
        with torch.autocast(styles.device.type, enabled=False):
            return demodulation_coefficients(weight.float(), styles.float(), eps)
    energy = weight.square().sum(dim=[2, 3])  # [o, i]
    return (styles.square() @ energy.t() + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    padding: int = 0,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    flip_weight: bool = True,
    input_gain: torch.Tensor | float | None = None,
    noise: torch.Tensor | None = None,
    mode: str = "auto",
    bias: torch.Tensor | None = None,
    output_gain: float = 1.0,
) -> torch.Tensor:
    """x [b, i, h, w], weight [o, i, k, k], styles [b, i] -> [b, o, h', w'].

    ``up`` 2 up-samples with ``resample_filter`` (see :func:`conv2d_resample`, whose
    ``padding`` and ``flip_weight`` this shares). ``input_gain`` (scalar or [i]) scales the
    input after demodulation (StyleGAN3's magnitude normalisation). ``noise`` (broadcastable
    to the output) and ``bias`` [o] are added after demodulation, and ``output_gain`` scales
    the sum: ``(conv + noise + bias) * output_gain``. Folding them in here saves the layers
    separate passes over their largest tensors (the gain of a following leaky ReLU may be
    applied first: it is positively homogeneous). Computation runs in x's dtype.
    """
    if mode not in MODES:
        raise ValueError(f"modulated_conv2d: mode {mode!r}; use one of {', '.join(MODES)}")
    batch, in_channels = x.shape[0], x.shape[1]
    out_channels = weight.shape[0]
    if weight.shape[1] != in_channels or styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles "
            f"{tuple(styles.shape)} do not agree"
        )
    styles = styles.to(torch.float32)
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so float16 cannot overflow; demodulation removes these scales again.
        styles = styles / styles.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
    dcoefs = demodulation_coefficients(weight.to(torch.float32), styles) if demodulate else None
    in_scale = styles
    if input_gain is not None:
        in_scale = in_scale * torch.as_tensor(input_gain, dtype=torch.float32, device=x.device).reshape(1, -1)
    if mode == "auto":
        channels_last = x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        mode = "grouped" if batch == 1 and not channels_last else "activation"
    gain = float(output_gain)
    if mode == "activation":
        x = x * in_scale.to(x.dtype).reshape(batch, in_channels, 1, 1)
        y = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding, flip_weight=flip_weight)
        added, late_bias = _added_terms(noise, bias, gain, batch, y)
        if dcoefs is not None:
            d = (dcoefs * gain if gain != 1 else dcoefs).to(y.dtype).reshape(batch, out_channels, 1, 1)
            y = torch.addcmul(added, y, d) if added is not None else y * d
        elif added is not None:
            y = torch.add(added, y, alpha=gain) if gain != 1 else y + added
        elif gain != 1:
            y = y * gain
        return y if late_bias is None else y + late_bias
    w = weight.to(torch.float32)[None] * in_scale.reshape(batch, 1, in_channels, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(batch, out_channels, 1, 1, 1)
    if gain != 1:
        w = w * gain
    w = w.reshape(batch * out_channels, in_channels, *weight.shape[2:]).to(x.dtype)
    y = conv2d_resample(
        x.reshape(1, batch * in_channels, *x.shape[2:]), w, resample_filter, up=up, padding=padding,
        groups=batch, flip_weight=flip_weight,
    )
    y = y.reshape(batch, out_channels, *y.shape[2:])
    added, late_bias = _added_terms(noise, bias, gain, batch, y)
    y = y + added if added is not None else y
    return y if late_bias is None else y + late_bias


def _added_terms(noise: torch.Tensor | None, bias: torch.Tensor | None, gain: float, batch: int,
                 y: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(noise + bias) * gain as one small broadcastable tensor, or (noise * gain, bias * gain) when
    joining them would build a full-size tensor (per-sample noise at batch > 1). The joined
    [1, o, h, w] tensor gets y's memory format: an element-wise op over tensors of different
    layouts takes a slow strided path (4x slower on CPU for a channels-last y)."""
    dtype = y.dtype
    scaled_noise = None if noise is None else (noise.to(dtype) * gain if gain != 1 else noise.to(dtype))
    scaled_bias = None if bias is None else (bias.to(dtype) * gain if gain != 1 else bias.to(dtype)).reshape(1, -1, 1, 1)
    if scaled_noise is None or scaled_bias is None:
        return (scaled_noise if scaled_bias is None else scaled_bias), None
    if scaled_noise.ndim == 4 and scaled_noise.shape[0] > 1 and batch > 1:
        return scaled_noise, scaled_bias
    channels_last = y.ndim == 4 and not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last)
    shape = torch.broadcast_shapes(scaled_noise.shape, scaled_bias.shape)
    if not channels_last or len(shape) != 4:
        return scaled_noise + scaled_bias, None
    if torch.is_grad_enabled() and (scaled_noise.requires_grad or scaled_bias.requires_grad):
        return (scaled_noise + scaled_bias).contiguous(memory_format=torch.channels_last), None
    joined = torch.empty(shape, dtype=dtype, device=y.device, memory_format=torch.channels_last)
    return torch.add(scaled_noise, scaled_bias, out=joined), None
