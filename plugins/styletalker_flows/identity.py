"""The identity flow: the prior stays a plain autoregressive Gaussian (the paper's no-flow ablation)."""

from __future__ import annotations

import torch

from styletalker_core.interfaces import Flow


class IdentityFlow(Flow):
    """No flow: z = u, log-determinant 0. Selecting it turns the prior into a Gaussian one."""

    def __init__(self, dim: int, context_dim: int) -> None:
        super().__init__()
        self.dim, self.context_dim = dim, context_dim

    def forward(self, u: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return u, u.new_zeros(u.shape[0])

    def inverse(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z, z.new_zeros(z.shape[0])
