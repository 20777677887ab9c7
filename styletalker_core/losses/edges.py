"""Edge term of reconstruction losses: L1 between image gradients (finite differences).

Small, high-contrast features (eyes, lips, outlines) carry little of a plain L1 or L2 error
but most of the gradient energy; matching gradients makes an autoencoder learn them early.
"""

from __future__ import annotations

import torch


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y [b, c, h, w] -> [b]: mean |dx(x) - dx(y)| + mean |dy(x) - dy(y)| (horizontal and vertical differences)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().flatten(1).mean(1) + dy.abs().flatten(1).mean(1)
