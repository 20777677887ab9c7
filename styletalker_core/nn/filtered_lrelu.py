"""StyleGAN3's alias-free nonlinearity: bias, up-sample, leaky ReLU, low-pass, down-sample.

The leaky ReLU creates frequencies above the Nyquist limit of the layer's sampling grid;
evaluating it at ``up`` times the rate between two low-pass filters keeps them from folding
back (aliasing). Both resampling steps use the polyphase, separable paths of
:func:`styletalker_core.nn.upfirdn.upfirdn2d`, so the up-sampled zeros are never multiplied
and the down-sampling filter is evaluated only at kept samples.
"""

from __future__ import annotations

import math

import torch

from styletalker_core.nn.activation import bias_act
from styletalker_core.nn.upfirdn import IntPair, upfirdn2d


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: IntPair = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
) -> torch.Tensor:
    """x [b, c, h, w] -> [b, c, h', w'] with h' = ((h * up + py0 + py1 - ku + 1) - kd) / down + 1.

    ``fu`` ([ku] separable or [ku, ku]) is the up-sampling filter (applied with gain up^2),
    ``fd`` the down-sampling filter; None means identity. ``b`` [c] is added first; then
    ``leaky_relu(x, slope) * gain`` clamped to [-clamp, clamp]. NVlabs semantics.
    """
    if x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16):
        # the filters run in float32 on CPU (see upfirdn2d): keep float32 through the whole op, cast once
        return filtered_lrelu(x.float(), fu, fd, b, up, down, padding, gain, slope, clamp).to(x.dtype)
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up * up)
    x = bias_act(x, act="lrelu" if slope != 1 else "linear", alpha=slope, gain=gain, clamp=clamp, inplace=True)
    return upfirdn2d(x, fd, down=down)
