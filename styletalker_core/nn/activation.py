"""Bias, activation, gain and clamp applied in one call (the StyleGAN ``bias_act`` op)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Gain that keeps the activation's output variance equal to its input's for unit Gaussians.
ACTIVATION_GAINS: dict[str, float] = {"linear": 1.0, "lrelu": math.sqrt(2.0), "relu": math.sqrt(2.0)}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    alpha: float = 0.2,
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
    inplace: bool = False,
) -> torch.Tensor:
    """``clamp(act(x + b) * gain)`` with ``b`` broadcast along axis ``dim`` of ``x``.

    ``act`` is 'linear', 'lrelu' (negative slope ``alpha``) or 'relu'; ``gain`` defaults to
    the activation's :data:`ACTIVATION_GAINS` entry; ``clamp`` limits the result to
    [-clamp, clamp] (None: no clamping). With ``inplace`` (for callers that own ``x``), ``x``
    is overwritten whenever autograd does not need it.
    """
    if act not in ACTIVATION_GAINS:
        raise ValueError(f"unknown activation {act!r}; use one of {', '.join(ACTIVATION_GAINS)}")
    if gain is None:
        gain = ACTIVATION_GAINS[act]
    inplace = inplace and not (torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad)))
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        b = b.to(x.dtype).reshape(shape)
        x = x.add_(b) if inplace else x + b
    # Leaky ReLU and ReLU are positively homogeneous, so the gain may come first; that keeps
    # the activation the last in-place op (its backward reads its own output).
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if act == "lrelu":
        x = F.leaky_relu_(x, alpha) if inplace else F.leaky_relu(x, alpha)
    elif act == "relu":
        x = F.relu_(x) if inplace else F.relu(x)
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x
