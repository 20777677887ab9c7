"""Rational-quadratic neural spline flow (coupling form), conditioned on the prior's hidden state."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from styletalker_flows.composite import TransformFlow, require_at_least, require_positive
from styletalker_flows.layers import ActNorm, Coupling, Permutation
from styletalker_flows.rq_spline import identity_derivative_raw, rational_quadratic_spline


class SplineCoupling(Coupling):
    """Elementwise monotonic rational-quadratic spline on [-bound, bound], identity outside."""

    def __init__(self, dim: int, context_dim: int, hidden: int, layers: int, bins: int, bound: float) -> None:
        super().__init__(dim, context_dim, params_per_dim=3 * bins - 1, hidden=hidden, layers=layers)
        self.bins, self.bound = bins, bound
        with torch.no_grad():  # start near the identity: equal bins, unit inner derivatives
            last = cast(nn.Linear, self.conditioner.net[-1])  # the conditioner ends in a linear layer
            last.bias.view(self.changed, 3 * bins - 1)[:, 2 * bins :] = identity_derivative_raw()

    def elementwise(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return rational_quadratic_spline(x, params, self.bound, inverse=inverse)


class SplineFlow(TransformFlow):
    """Rational-quadratic neural spline flow: ``steps`` x [actnorm, permutation, spline coupling].

    Splines have ``bins`` bins on [-bound, bound] and identity tails; their knots come from an
    MLP of the kept half of z and the context (the autoregressive prior's hidden state).
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        steps: int = 4,
        bins: int = 8,
        bound: float = 4.0,
        hidden: int = 64,
        layers: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, context_dim)
        require_at_least(1, steps=steps, hidden=hidden, layers=layers)
        require_at_least(2, bins=bins)
        require_positive(bound=bound)
        for index in range(steps):
            self.transforms.append(ActNorm(dim))
            self.transforms.append(Permutation(dim, seed * 1009 + index))
            self.transforms.append(SplineCoupling(dim, context_dim, hidden, layers, bins, bound))
