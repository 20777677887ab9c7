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
        return padding  # type: ignore[return-value]
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
    """``F.pad(x, padding)`` (x0, x1, y0, y1); pure cropping returns a view instead of a copy."""
    x0, x1, y0, y1 = padding
    if max(padding) > 0:
        return F.pad(x, list(padding))
    height, width = x.shape[2], x.shape[3]
    return x[:, :, -y0 : height + y1, -x0 : width + x1]


def _depthwise(f: torch.Tensor, channels: int, axis: str | None, dtype: torch.dtype) -> torch.Tensor:
    """Filter taps as a depthwise conv weight [c, 1, kh, kw] ('x': [1, k], 'y': [k, 1], None: 2-D)."""
    f = f.to(dtype)
    if axis == "x":
        f = f.reshape(1, -1)
    elif axis == "y":
        f = f.reshape(-1, 1)
    return f[None, None].expand(channels, 1, *f.shape).contiguous()


def _upfirdn_pass(
    x: torch.Tensor, weight: torch.Tensor, up: tuple[int, int], down: tuple[int, int], padding: tuple[int, int, int, int]
) -> torch.Tensor:
    """One depthwise pass with correlation weight [c, 1, kh, kw].

    Up-sampling runs as a depthwise transposed convolution (the adjoint of a strided one:
    each output phase sums only the taps that meet real samples), followed by the padding
    or cropping that places its full-length output on the requested grid; down-sampling as
    a strided convolution, which evaluates the filter only where a sample is kept.
    """
    channels = x.shape[1]
    dx, dy = down
    px0, px1, py0, py1 = padding
    if up == (1, 1):
        return F.conv2d(_pad_or_crop(x, [px0, px1, py0, py1]), weight, stride=(dy, dx), groups=channels)
    ux, uy = up
    kh, kw = weight.shape[2], weight.shape[3]
    y = F.conv_transpose2d(x, weight.flip([2, 3]), stride=(uy, ux), groups=channels)
    y = _pad_or_crop(y, [px0 - kw + 1, px1 + ux - kw, py0 - kh + 1, py1 + uy - kh])
    if y.shape[2] <= 0 or y.shape[3] <= 0:
        raise ValueError(f"upfirdn2d: up {up}, padding {padding} and a {kh}x{kw} filter give no output")
    if down != (1, 1):
        y = y[:, :, ::dy, ::dx]
    return y


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

    ``f`` [k] is applied separably along x then y, each axis with gain ``sqrt(gain)``;
    ``f`` [kh, kw] is applied as a 2-D filter with ``gain``; None means no filtering.
    ``flip_filter`` False means true convolution (the filter is flipped before correlating).
    Output size along an axis: ``(n * up + pad0 + pad1 - k + 1) / down`` rounded up.
    """
    ux, uy = parse_scaling(up)
    dx, dy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    if f is None:
        f = torch.ones(1, dtype=torch.float32, device=x.device)
    f = f if flip_filter else f.flip(list(range(f.ndim)))
    # Depthwise filtering is several times faster on CPU in channels-last layout.
    x = x.contiguous(memory_format=torch.channels_last)
    if f.ndim == 1:
        f = f * (gain ** 0.5)
        x = _upfirdn_pass(x, _depthwise(f, x.shape[1], "x", x.dtype), (ux, 1), (dx, 1), (px0, px1, 0, 0))
        return _upfirdn_pass(x, _depthwise(f, x.shape[1], "y", x.dtype), (1, uy), (1, dy), (0, 0, py0, py1))
    if f.ndim == 2:
        weight = _depthwise(f * gain, x.shape[1], None, x.dtype)
        return _upfirdn_pass(x, weight, (ux, uy), (dx, dy), (px0, px1, py0, py1))
    raise ValueError(f"upfirdn2d: filter must be 1-D or 2-D, got shape {tuple(f.shape)}")


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
