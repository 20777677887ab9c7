"""RealNVP / Glow-style affine coupling flow, conditioned on the prior's hidden state."""

from __future__ import annotations

import torch

from styletalker_flows.composite import TransformFlow, require_at_least, require_positive
from styletalker_flows.layers import ActNorm, Coupling, Permutation


class AffineCoupling(Coupling):
    """y = x * exp(s) + t with (s, t) from the conditioner; s is soft-clamped to [-bound, bound]."""

    def __init__(self, dim: int, context_dim: int, hidden: int, layers: int, scale_bound: float) -> None:
        super().__init__(dim, context_dim, params_per_dim=2, hidden=hidden, layers=layers)
        self.scale_bound = scale_bound

    def elementwise(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raw_scale, shift = params.unbind(-1)
        log_scale = self.scale_bound * torch.tanh(raw_scale / self.scale_bound)
        if inverse:
            return (x - shift) * (-log_scale).exp(), -log_scale
        return x * log_scale.exp() + shift, log_scale


class AffineCouplingFlow(TransformFlow):
    """Affine coupling flow (RealNVP / Glow): ``steps`` x [actnorm, permutation, affine coupling].

    Each coupling's scale and shift come from an MLP of the kept half of z and the context
    (the autoregressive prior's hidden state).
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        steps: int = 4,
        hidden: int = 64,
        layers: int = 2,
        scale_bound: float = 3.0,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, context_dim)
        require_at_least(1, steps=steps, hidden=hidden, layers=layers)
        require_positive(scale_bound=scale_bound)
        for index in range(steps):
            self.transforms.append(ActNorm(dim))
            self.transforms.append(Permutation(dim, seed * 1009 + index))
            self.transforms.append(AffineCoupling(dim, context_dim, hidden, layers, scale_bound))
