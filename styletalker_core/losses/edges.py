"""Detail-aware terms of reconstruction losses.

Small, high-contrast features (eyes, lips, outlines) carry little of a plain L1 or L2 error,
so a decoder learns them last (spectral bias). Two counter-weights:

- :func:`gradient_l1`: L1 between image gradients (finite differences);
- :func:`detail_weights`: per-pixel weights of the L1 term that grow with the target's local
  high-pass energy, so an error on an eye or a lip costs many times an error on a cheek.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y [b, c, h, w] -> [b]: mean |dx(x) - dx(y)| + mean |dy(x) - dy(y)| (horizontal and vertical differences)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().flatten(1).mean(1) + dy.abs().flatten(1).mean(1)


def detail_weights(images: torch.Tensor, gain: float) -> torch.Tensor:
    """images [b, c, h, w] in [-1, 1] -> weights [b, 1, h, w] = 1 + gain * D, where D is the
    channel-summed |image - 5x5 box blur|, dilated by a 3x3 max filter (so a feature's
    surroundings count too). Computed without gradient: the weights depend on the target only."""
    with torch.no_grad():
        high_pass = (images - F.avg_pool2d(images, 5, 1, 2, count_include_pad=False)).abs().sum(1, keepdim=True)
        return 1 + gain * F.max_pool2d(high_pass, 3, 1, 1)
