"""Monotonic rational-quadratic spline on [-bound, bound] with identity tails (Durkan et al., 2019).

Parameter layout per transformed value: ``bins`` unnormalised widths, ``bins`` unnormalised
heights, ``bins - 1`` unnormalised derivatives at the inner knots (the outer knots have
derivative 1 so the spline joins the identity tails smoothly).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3


def spline_knots(raw: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """raw [..., k] -> (knot positions [..., k + 1] from -bound to bound, bin sizes [..., k])."""
    bins = raw.shape[-1]
    fractions = MIN_BIN + (1 - MIN_BIN * bins) * torch.softmax(raw, dim=-1)
    positions = F.pad(torch.cumsum(fractions, dim=-1), (1, 0)) * (2 * bound) - bound
    positions = torch.cat([positions[..., :1].clamp(-bound, -bound), positions[..., 1:-1],
                           positions[..., -1:].clamp(bound, bound)], dim=-1)
    return positions, positions[..., 1:] - positions[..., :-1]


def _derivatives(raw: torch.Tensor) -> torch.Tensor:
    """raw [..., k - 1] -> knot derivatives [..., k + 1], 1 at both ends."""
    inner = MIN_DERIVATIVE + F.softplus(raw)
    return F.pad(inner, (1, 1), value=1.0)


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return values.gather(-1, index[..., None]).squeeze(-1)


def rational_quadratic_spline(
    x: torch.Tensor, params: torch.Tensor, bound: float, inverse: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [...], params [..., 3k - 1] -> (y [...], log|dy/dx| [...]) of the spline (or its inverse).

    Outside [-bound, bound] the map is the identity (log-det 0).
    """
    bins = (params.shape[-1] + 1) // 3
    if 3 * bins - 1 != params.shape[-1]:
        raise ValueError(f"spline parameters: expected 3k - 1 values per element, got {params.shape[-1]}")
    raw_w, raw_h, raw_d = params[..., :bins], params[..., bins : 2 * bins], params[..., 2 * bins :]
    inside = (x >= -bound) & (x <= bound)
    xs = x.clamp(-bound, bound)
    knots_x, widths = spline_knots(raw_w, bound)
    knots_y, heights = spline_knots(raw_h, bound)
    derivatives = _derivatives(raw_d)
    search = knots_y if inverse else knots_x
    index = (xs[..., None] >= search[..., 1:-1]).sum(-1)
    x_k, w_k = _gather(knots_x, index), _gather(widths, index)
    y_k, h_k = _gather(knots_y, index), _gather(heights, index)
    d_k, d_k1 = _gather(derivatives, index), _gather(derivatives[..., 1:], index)
    slope = h_k / w_k
    curvature = d_k1 + d_k - 2 * slope
    if inverse:
        dy = xs - y_k
        a = h_k * (slope - d_k) + dy * curvature
        b = h_k * d_k - dy * curvature
        c = -slope * dy
        discriminant = (b * b - 4 * a * c).clamp_min(0)
        theta = (2 * c) / (-b - discriminant.sqrt())
        out = theta * w_k + x_k
    else:
        theta = (xs - x_k) / w_k
        out = y_k + h_k * (slope * theta**2 + d_k * theta * (1 - theta)) / (slope + curvature * theta * (1 - theta))
    mixed = theta * (1 - theta)
    denominator = slope + curvature * mixed
    numerator = slope**2 * (d_k1 * theta**2 + 2 * slope * mixed + d_k * (1 - theta) ** 2)
    log_det = numerator.log() - 2 * denominator.log()
    if inverse:
        log_det = -log_det
    return torch.where(inside, out, x), torch.where(inside, log_det, torch.zeros_like(log_det))


def identity_derivative_raw() -> float:
    """The raw inner-derivative value that softplus maps to derivative 1 (an identity-like spline)."""
    return math.log(math.expm1(1 - MIN_DERIVATIVE))
