"""Up-sampling, FIR filtering and down-sampling of images, without touching inserted zeros.

Semantics follow NVlabs' ``upfirdn2d`` and ``conv2d_resample`` (so converted checkpoints give
the same images): up-sample by inserting ``up - 1`` zeros after every sample, pad (negative
padding crops), filter, keep every ``down``-th sample. The implementation never forms the
zero-inserted signal: each output phase is a correlation of the *original* samples with
every ``up``-th filter tap (polyphase), and down-sampling filters are evaluated only where a
sample is kept (strided convolution). 1-D filters are applied separably, one axis at a time.
:mod:`styletalker_core.nn.reference` holds the plain zero-insertion implementation the tests
compare against.

Shapes: x [b, c, h, w]; 1-D filters [k] (separable) or 2-D filters [kh, kw].
Padding is ``(px0, px1, py0, py1)`` (an int or an (x, y) pair is expanded), as in NVlabs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

IntPair = int | Sequence[int]


def parse_scaling(value: IntPair) -> tuple[int, int]:
    """``up``/``down`` as (x, y) factors, each >= 1."""
    sx, sy = (value, value) if isinstance(value, int) else tuple(value)
    if sx < 1 or sy < 1:
        raise ValueError(f"resampling factors must be >= 1, got {value!r}")
    return int(sx), int(sy)


def parse_padding(padding: IntPair) -> tuple[int, int, int, int]:
    """Padding as (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) == 4:
        return padding
    raise ValueError(f"padding must be an int, (x, y) or (x0, x1, y0, y1), got {padding!r}")


def resample_padding(f: torch.Tensor, up: int = 1, down: int = 1, padding: IntPair = 0) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) padding that centres a filter ``f`` ([k] or [kh, kw]) when up- or
    down-sampling by 2 or more, added to ``padding`` (NVlabs' convention)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = f.shape[-1], f.shape[0]
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return px0, px1, py0, py1


def _pad_or_crop(x: torch.Tensor, padding: Sequence[int]) -> torch.Tensor:
    """``F.pad(x, padding)`` (x0, x1, y0, y1), kept in channels-last layout."""
    if any(padding):
        x = F.pad(x, list(padding))
    return x.contiguous(memory_format=torch.channels_last)


def _depthwise(f: torch.Tensor, channels: int, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """Filter taps as a depthwise conv weight [c, 1, kh, kw]."""
    return f.to(dtype).reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: IntPair = 1,
    down: IntPair = 1,
    padding: IntPair = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Up-sample, pad, FIR-filter and down-sample x [b, c, h, w] (NVlabs ``upfirdn2d`` semantics).

    ``f`` [k] is applied separably along x and y, each axis with gain ``sqrt(gain)``;
    ``f`` [kh, kw] is applied as a 2-D filter with ``gain``; None means no filtering.
    ``flip_filter`` False means true convolution (the filter is flipped before correlating).
    Output size along an axis: ``(n * up + pad0 + pad1 - k + 1) / down`` rounded up.

    Axes that up-sample use a depthwise transposed convolution (the adjoint of a strided
    one: output phase r sums only the taps that meet real samples), whose full-length output
    is then padded or cropped onto the requested grid; the other axes are padded first and
    filtered by a strided convolution, evaluated only where a sample is kept. Padding along
    one axis commutes with filtering along the other, so all padding happens in one step.
    """
    if x.device.type == "cpu" and (x.dtype in (torch.bfloat16, torch.float16) or torch.is_autocast_enabled("cpu")):
        # Depthwise (transposed) convolutions are memory-bound and 2-15x slower in bfloat16 / float16
        # than in float32 on CPU (measured with oneDNN in torch 2.13): filter in float32, return x's dtype.
        with torch.autocast("cpu", enabled=False):
            y = upfirdn2d(x.float(), None if f is None else f.float(), up, down, padding, flip_filter, gain)
        return y.to(x.dtype)
    ux, uy = parse_scaling(up)
    dx, dy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    if f is None:
        f = torch.ones(1, dtype=torch.float32, device=x.device)
    if f.ndim not in (1, 2):
        raise ValueError(f"upfirdn2d: filter must be 1-D or 2-D, got shape {tuple(f.shape)}")
    f = f if flip_filter else f.flip(list(range(f.ndim)))
    channels = x.shape[1]
    # Depthwise filtering is several times faster on CPU in channels-last layout.
    x = x.contiguous(memory_format=torch.channels_last)
    passes: list[tuple[torch.Tensor, tuple[int, int], Any, int | None]]  # (taps, kernel shape, up: int or (y, x), dim)
    if f.ndim == 1:
        f = f * (gain ** 0.5)
        passes = [(f, (1, f.numel()), ux, 3), (f, (f.numel(), 1), uy, 2)]  # (taps, kernel shape, up, dim)
    else:
        passes = [(f * gain, (f.shape[0], f.shape[1]), (uy, ux), None)]
    kh = f.shape[0]
    kw = f.shape[-1]
    # 1. transposed convolutions along the up-sampling axes
    for taps, shape, factor, dim in passes:
        if dim is None and factor != (1, 1):
            x = F.conv_transpose2d(x, _depthwise(taps.flip([0, 1]), channels, shape, x.dtype), stride=factor,
                                   groups=channels)
        elif dim is not None and factor > 1:
            stride = (1, factor) if dim == 3 else (factor, 1)
            x = F.conv_transpose2d(x, _depthwise(taps.flip(0), channels, shape, x.dtype), stride=stride,
                                   groups=channels)
    # 2. one padding / cropping step for every axis
    pad_x = [px0 - kw + 1, px1 + ux - kw] if ux > 1 else [px0, px1]
    pad_y = [py0 - kh + 1, py1 + uy - kh] if uy > 1 else [py0, py1]
    x = _pad_or_crop(x, pad_x + pad_y)
    # 3. correlation along the remaining axes, strided where down-sampling
    for taps, shape, factor, dim in passes:
        if dim is None and factor == (1, 1):
            x = F.conv2d(x, _depthwise(taps, channels, shape, x.dtype), stride=(dy, dx), groups=channels)
            dx = dy = 1
        elif dim is not None and factor == 1:
            stride = (1, dx) if dim == 3 else (dy, 1)
            x = F.conv2d(x, _depthwise(taps, channels, shape, x.dtype), stride=stride, groups=channels)
            dx, dy = (1, dy) if dim == 3 else (dx, 1)
    if x.shape[2] <= 0 or x.shape[3] <= 0:
        raise ValueError(f"upfirdn2d: up {up}, padding {padding} and a {kh}x{kw} filter give no output")
    # 4. decimation left over on up-sampled axes
    if dx > 1 or dy > 1:
        x = x[:, :, ::dy, ::dx]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: IntPair = 0, gain: float = 1.0) -> torch.Tensor:
    """Up-sample x [b, c, h, w] by ``up`` with filter ``f``: [b, c, h * up, w * up] (DC gain ``gain``)."""
    return upfirdn2d(x, f, up=up, padding=resample_padding(f, up=up, padding=padding), gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: IntPair = 0, gain: float = 1.0) -> torch.Tensor:
    """Down-sample x [b, c, h, w] by ``down`` with filter ``f``: [b, c, h / down, w / down]."""
    return upfirdn2d(x, f, down=down, padding=resample_padding(f, down=down, padding=padding), gain=gain)


def conv2d_resample(
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
    """2-D convolution with optional up- or down-sampling (NVlabs ``conv2d_resample`` semantics).

    x [b, i, h, w], w [o, i / groups, k, k], f the resampling filter ([t] or [t, t], needed
    when up or down > 1). Equals: up-sample by ``up`` with ``f`` (gain up^2), pad once, convolve
    with w, then filter with ``f`` and keep every ``down``-th sample. ``flip_weight`` True means
    correlation (``torch.nn.functional.conv2d``), False true convolution.
    Up-sampling: transposed convolution (multiplies real samples only), then the filter;
    down-sampling: filter, then strided convolution (evaluated only where a sample is kept).
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up- and down-sampling at once is not supported; use two calls")
    kh, kw = w.shape[2], w.shape[3]
    px0, px1, py0, py1 = parse_padding(padding)
    wc = w if flip_weight else w.flip([2, 3])
    if up == 1 and down == 1:
        if px0 == px1 and py0 == py1:
            return F.conv2d(x, wc, padding=(py0, px0), groups=groups)
        return F.conv2d(F.pad(x, [px0, px1, py0, py1]), wc, groups=groups)
    if f is None:
        raise ValueError("conv2d_resample: a resampling filter is needed for up/down-sampling")
    px0, px1, py0, py1 = resample_padding(f, up, down, padding)
    if up > 1:
        if kh == 1 and kw == 1:  # channel mixing commutes with filtering: mix at the low resolution
            return upfirdn2d(F.conv2d(x, wc, groups=groups), f, up=up, padding=[px0, px1, py0, py1],
                             flip_filter=flip_filter, gain=up * up)
        # Transposed convolution (the adjoint of a strided one: only real samples are
        # multiplied), then the FIR filter at the high rate with the remaining padding.
        wt = wc.flip([2, 3])
        out_channels, in_per_group = wt.shape[0], wt.shape[1]
        wt = wt.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        x = F.conv_transpose2d(x, wt, stride=up, groups=groups)
        pad = [px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)]
        return upfirdn2d(x, f, padding=pad, gain=up * up, flip_filter=flip_filter)
    if kh == 1 and kw == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return F.conv2d(x, wc, groups=groups)
    x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
    return F.conv2d(x, wc, stride=down, groups=groups)
