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

import attrs
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


@attrs.frozen
class _Phase:
    """Output phase ``r`` of a polyphase correlation along one axis: outputs ``up * n + r``
    read input samples ``n + offset + j`` weighted by taps ``first_tap + up * j``."""

    first_tap: int
    offset: int
    count: int


@attrs.frozen
class _AxisPlan:
    phases: tuple[_Phase, ...]
    per_phase: int  # outputs computed per phase (the last ones may be cropped)
    length: int  # true output length along the axis
    lo: int  # first input index any phase reads (may be negative: zero padding)
    hi: int  # one past the last input index any phase reads

    @property
    def aligned(self) -> bool:
        first = self.phases[0]
        return all(p.offset == first.offset and p.count == first.count for p in self.phases)


def _plan_axis(size: int, up: int, pad0: int, pad1: int, taps: int) -> _AxisPlan:
    """Polyphase plan for correlating a ``taps``-long kernel with the zero-inserted signal of
    ``size`` samples, up-sampled by ``up`` and padded by (pad0, pad1)."""
    length = size * up + pad0 + pad1 - taps + 1
    if length <= 0:
        raise ValueError(
            f"upfirdn: input of {size} samples, up {up}, padding ({pad0}, {pad1}) and {taps} taps give no output"
        )
    per_phase = -(-length // up)
    phases = []
    for r in range(up):
        first_tap = (pad0 - r) % up
        offset = (r + first_tap - pad0) // up
        phases.append(_Phase(first_tap, offset, len(range(first_tap, taps, up))))
    live = [p for p in phases if p.count > 0]
    lo = min(p.offset for p in live)
    hi = max(p.offset + per_phase + p.count - 1 for p in live)
    return _AxisPlan(tuple(phases), per_phase, length, lo, hi)


def _interleave(planes: list[list[torch.Tensor]], plan_y: _AxisPlan, plan_x: _AxisPlan) -> torch.Tensor:
    """planes[ry][rx] [b, c, ny, nx] -> [b, c, ny * uy, nx * ux], cropped to the true size."""
    rows = [torch.stack(row, dim=-1).flatten(-2) if len(row) > 1 else row[0] for row in planes]
    y = torch.stack(rows, dim=3).flatten(2, 3) if len(rows) > 1 else rows[0]
    return y[:, :, : plan_y.length, : plan_x.length]


def correlate_upsampled(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: tuple[int, int],
    padding: tuple[int, int, int, int],
    groups: int = 1,
    fuse_phases: bool = True,
) -> torch.Tensor:
    """Correlate the zero-inserted, padded ``x`` with ``kernel`` [o, i / groups, kh, kw], polyphase.

    Equal to ``conv2d(pad(zero_insert(x, up), padding), kernel, groups=groups)`` but reads only
    the real samples. With ``fuse_phases`` and phases that line up, all up_x * up_y phases run
    as one convolution with ``o * up_x * up_y`` outputs (best for dense kernels); otherwise one
    convolution per phase (best for depthwise filters).
    """
    ux, uy = up
    px0, px1, py0, py1 = padding
    _, _, height, width = x.shape
    plan_y = _plan_axis(height, uy, py0, py1, kernel.shape[2])
    plan_x = _plan_axis(width, ux, px0, px1, kernel.shape[3])
    xp = F.pad(x, [-plan_x.lo, plan_x.hi - width, -plan_y.lo, plan_y.hi - height])
    out_channels = kernel.shape[0]
    if ux == 1 and uy == 1:
        return F.conv2d(xp, kernel, groups=groups)[:, :, : plan_y.length, : plan_x.length]
    if fuse_phases and plan_y.aligned and plan_x.aligned and plan_y.phases[0].count and plan_x.phases[0].count:
        # One convolution whose output channels are (o, ry, rx): phases become a pixel shuffle.
        subs = [
            [kernel[:, :, qy.first_tap :: uy, qx.first_tap :: ux] for qx in plan_x.phases] for qy in plan_y.phases
        ]
        fused = torch.stack([torch.stack(row, dim=1) for row in subs], dim=1)  # [o, uy, ux, i, ky, kx]
        fused = fused.reshape(out_channels * uy * ux, *kernel.shape[1:2], *fused.shape[-2:])
        y = F.conv2d(xp, fused, groups=groups)
        b, _, ny, nx = y.shape
        y = y.reshape(b, out_channels, uy, ux, ny, nx).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(b, out_channels, ny * uy, nx * ux)[:, :, : plan_y.length, : plan_x.length]
    planes = []
    for qy in plan_y.phases:
        row = []
        for qx in plan_x.phases:
            if qy.count == 0 or qx.count == 0:
                row.append(x.new_zeros(x.shape[0], out_channels, plan_y.per_phase, plan_x.per_phase))
                continue
            y0 = qy.offset - plan_y.lo
            x0 = qx.offset - plan_x.lo
            window = xp[:, :, y0 : y0 + plan_y.per_phase + qy.count - 1, x0 : x0 + plan_x.per_phase + qx.count - 1]
            sub = kernel[:, :, qy.first_tap :: uy, qx.first_tap :: ux]
            row.append(F.conv2d(window, sub, groups=groups))
        planes.append(row)
    return _interleave(planes, plan_y, plan_x)


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
    """One depthwise pass with correlation weight [c, 1, kh, kw]."""
    channels = x.shape[1]
    dx, dy = down
    if up == (1, 1):
        px0, px1, py0, py1 = padding
        return F.conv2d(F.pad(x, [px0, px1, py0, py1]), weight, stride=(dy, dx), groups=channels)
    y = correlate_upsampled(x, weight, up, padding, groups=channels, fuse_phases=False)
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
    px0, px1, py0, py1 = parse_padding(padding)
    fw = f.shape[-1]
    fh = f.shape[0]
    pad = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: IntPair = 0, gain: float = 1.0) -> torch.Tensor:
    """Down-sample x [b, c, h, w] by ``down`` with filter ``f``: [b, c, h / down, w / down]."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw = f.shape[-1]
    fh = f.shape[0]
    pad = [px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, gain=gain)


def _full_convolution(w: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Full 2-D convolution of every [kh, kw] kernel of w [o, i, kh, kw] with filter f ([k] separable or [k, k])."""
    o, i, kh, kw = w.shape
    flat = w.reshape(o * i, 1, kh, kw)
    if f.ndim == 1:
        k = f.numel()
        taps = f.flip(0).to(w.dtype)
        flat = F.conv2d(F.pad(flat, [k - 1, k - 1, 0, 0]), taps.reshape(1, 1, 1, k))
        flat = F.conv2d(F.pad(flat, [0, 0, k - 1, k - 1]), taps.reshape(1, 1, k, 1))
    else:
        fh, fw = f.shape
        flat = F.conv2d(F.pad(flat, [fw - 1, fw - 1, fh - 1, fh - 1]), f.flip([0, 1]).to(w.dtype)[None, None])
    return flat.reshape(o, i, *flat.shape[-2:])


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
    Up-sampling: the filter and kernel are combined into one kernel and evaluated polyphase
    (no zero is multiplied); down-sampling: filter, then strided convolution.
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
    fw = f.shape[-1]
    fh = f.shape[0]
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
        if kh == 1 and kw == 1:  # channel mixing commutes with filtering: mix at the low resolution
            return upfirdn2d(F.conv2d(x, wc, groups=groups), f, up=up, padding=[px0, px1, py0, py1],
                             flip_filter=flip_filter, gain=up * up)
        fc = f if flip_filter else f.flip(list(range(f.ndim)))
        fc = fc * (up ** fc.ndim)  # DC gain up^2 in 2-D: up per axis for a separable filter
        kernel = _full_convolution(wc, fc.to(w.dtype))
        return correlate_upsampled(x, kernel, (up, up), (px0, px1, py0, py1), groups=groups, fuse_phases=True)
    px0 += (fw - down + 1) // 2
    px1 += (fw - down) // 2
    py0 += (fh - down + 1) // 2
    py1 += (fh - down) // 2
    if kh == 1 and kw == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return F.conv2d(x, wc, groups=groups)
    x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
    return F.conv2d(x, wc, stride=down, groups=groups)
