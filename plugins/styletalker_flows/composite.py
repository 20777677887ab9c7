"""A flow made of a sequence of transforms."""

from __future__ import annotations

import torch
from torch import nn

from styletalker_core.errors import OptionValueError
from styletalker_core.interfaces import Flow
from styletalker_flows.layers import Transform


def require_at_least(least: int, **sizes: int) -> None:
    """Raise an OptionValueError naming the first of ``sizes`` (option name -> value) below ``least``."""
    for option, value in sizes.items():
        if value < least:
            raise OptionValueError(option, value, f"must be at least {least}")


def require_positive(**values: float) -> None:
    """Raise an OptionValueError naming the first of ``values`` that is not > 0."""
    for option, value in values.items():
        if not value > 0:
            raise OptionValueError(option, value, "must be > 0")


class TransformFlow(Flow):
    """Applies ``transforms`` in order when sampling (u -> z) and in reverse for densities."""

    def __init__(self, dim: int, context_dim: int) -> None:
        super().__init__()
        self.dim, self.context_dim = dim, context_dim
        self.transforms = nn.ModuleList()

    def _check(self, x: torch.Tensor, context: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.dim or context.shape != (x.shape[0], self.context_dim):
            raise ValueError(
                f"{type(self).__name__}: expected x [n, {self.dim}] and context [n, {self.context_dim}], "
                f"got {tuple(x.shape)} and {tuple(context.shape)}"
            )

    def forward(self, u: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(u, context)
        log_det = u.new_zeros(u.shape[0])
        for transform in self.transforms:
            u, step = transform(u, context)
            log_det = log_det + step
        return u, log_det

    def inverse(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(z, context)
        log_det = z.new_zeros(z.shape[0])
        transform: Transform
        for transform in reversed(self.transforms):  # type: ignore[assignment]
            z, step = transform.inverse(z, context)
            log_det = log_det + step
        return z, log_det
