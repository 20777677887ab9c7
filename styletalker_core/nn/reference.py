"""Plain, slow reference implementations of the resampling maths.

Written for clarity, not speed: up-sampling inserts zeros into a full-size tensor, filters
are applied as dense 2-D kernels, down-sampling filters every sample and then drops the
unused ones, and modulated convolution loops over the batch. Tests check the fast paths in
:mod:`styletalker_core.nn.upfirdn`, :mod:`~styletalker_core.nn.modulated` and
:mod:`~styletalker_core.nn.filtered_lrelu` against these; benchmarks time both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from styletalker_core.nn.activation import bias_act
from styletalker_core.nn.upfirdn import IntPair, parse_padding, parse_scaling, resample_padding


def upfirdn2d_reference(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Same contract as :func:`styletalker_core.nn.upfirdn.upfirdn2d`, computed directly."""
    ux, uy = parse_scaling(up)
    dx, dy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    b, c, h, w = x.shape
    if f is None:
        f = torch.ones(1, dtype=torch.float32, device=x.device)
    f2 = torch.outer(f, f) if f.ndim == 1 else f
    f2 = (f2 * gain).to(x.dtype)
    if not flip_filter:
        f2 = f2.flip([0, 1])
    upsampled = x.new_zeros(b, c, h * uy, w * ux)
    upsampled[:, :, ::uy, ::ux] = x
    padded = F.pad(upsampled, [px0, px1, py0, py1])
    kernel = f2[None, None].expand(c, 1, *f2.shape)
    filtered = F.conv2d(padded, kernel, groups=c)
    return filtered[:, :, ::dy, ::dx]


def conv2d_resample_reference(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: IntPair = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Same contract as :func:`styletalker_core.nn.upfirdn.conv2d_resample`: up-sample, pad,
    convolve, filter and decimate, each step on full-size tensors."""
    if up > 1 or down > 1:
        if f is None:
            raise ValueError("conv2d_resample_reference: a resampling filter is needed for up/down-sampling")
        px0, px1, py0, py1 = resample_padding(f, up, down, padding)
    else:
        px0, px1, py0, py1 = parse_padding(padding)
    x = upfirdn2d_reference(
        x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter
    )
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = upfirdn2d_reference(x, f, down=down, flip_filter=flip_filter)
    return x


def modulated_conv2d_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    padding: int = 0,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    flip_weight: bool = True,
    input_gain: torch.Tensor | None = None,
) -> torch.Tensor:
    """One sample at a time: scale the kernel by the styles, normalise each output filter to
    unit L2 norm (demodulation), convolve. Shapes as :func:`~styletalker_core.nn.modulated_conv2d`."""
    outputs = []
    for index in range(x.shape[0]):
        w = weight * styles[index].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        if input_gain is not None:
            w = w * input_gain.reshape(1, -1, 1, 1)
        outputs.append(
            conv2d_resample_reference(
                x[index : index + 1], w, resample_filter, up=up, padding=padding, flip_weight=flip_weight
            )
        )
    return torch.cat(outputs)


def filtered_lrelu_reference(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: IntPair = 0,
    gain: float = 2 ** 0.5,
    slope: float = 0.2,
    clamp: float | None = None,
) -> torch.Tensor:
    """Same contract as :func:`styletalker_core.nn.filtered_lrelu.filtered_lrelu`: bias,
    zero-insertion up-sampling with dense filtering, leaky ReLU, dense filtering, decimation."""
    x = bias_act(x, b)
    x = upfirdn2d_reference(x, fu, up=up, padding=padding, gain=up * up)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d_reference(x, fd, down=down)
