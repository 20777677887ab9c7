"""Building blocks of the flows: invertible transforms conditioned on a context vector.

Every transform maps x [n, d] with context [n, h] to y [n, d] and returns the log |det|
of its Jacobian per row; ``inverse`` undoes ``forward`` exactly.
"""

from __future__ import annotations

import abc

import torch
from torch import nn


class Transform(nn.Module, abc.ABC):
    """One invertible step of a flow."""

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [n, d], context [n, h] -> (y [n, d], log|det dy/dx| [n])."""

    @abc.abstractmethod
    def inverse(self, y: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y [n, d], context [n, h] -> (x [n, d], log|det dx/dy| [n])."""


class ActNorm(Transform):
    """Per-dimension learned scale and shift (Glow's activation normalisation).

    Initialised to the identity rather than from a first batch, so the flow carries no
    hidden initialisation state and forward/inverse stay exact inverses from the start.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x * self.log_scale.exp() + self.shift
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (y - self.shift) * (-self.log_scale).exp()
        return x, (-self.log_scale.sum()).expand(y.shape[0])


class Permutation(Transform):
    """A fixed permutation of the dimensions (drawn from ``seed``; stored, so it reloads exactly)."""

    order: torch.Tensor  # buffer
    inverse_order: torch.Tensor  # buffer

    def __init__(self, dim: int, seed: int) -> None:
        super().__init__()
        order = torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
        if dim > 1 and torch.equal(order, torch.arange(dim)):
            order = order.flip(0)  # never the identity: every step must mix the halves
        self.register_buffer("order", order)
        self.register_buffer("inverse_order", torch.argsort(order))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, self.order], x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return y[:, self.inverse_order], y.new_zeros(y.shape[0])


class Conditioner(nn.Module):
    """MLP: (kept half of x [n, a], context [n, h]) -> transform parameters [n, out].

    The last layer starts small (not zero), so each coupling begins close to the identity
    while gradients still reach every layer.
    """

    def __init__(self, in_dim: int, context_dim: int, out_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_dim + context_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        last = nn.Linear(width, out_dim)
        nn.init.normal_(last.weight, std=1e-2)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*blocks, last)

    def forward(self, kept: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([kept, context], dim=-1))


class Coupling(Transform, abc.ABC):
    """Coupling layer: the first ``dim // 2`` dimensions pass through and, with the context,
    parameterise an elementwise invertible map of the others. With dim 1 nothing passes
    through and the map depends on the context alone."""

    def __init__(self, dim: int, context_dim: int, params_per_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.kept = dim // 2
        self.changed = dim - self.kept
        self.params_per_dim = params_per_dim
        self.conditioner = Conditioner(self.kept, context_dim, self.changed * params_per_dim, hidden, layers)

    def _params(self, kept: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.conditioner(kept, context).view(kept.shape[0], self.changed, self.params_per_dim)

    @abc.abstractmethod
    def elementwise(self, x: torch.Tensor, params: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """x [n, m], params [n, m, p] -> (y [n, m], log|det| [n, m]) of the elementwise map or its inverse."""

    def _couple(self, x: torch.Tensor, context: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        kept, changed = x[:, : self.kept], x[:, self.kept :]
        out, log_det = self.elementwise(changed, self._params(kept, context), inverse)
        return torch.cat([kept, out], dim=-1), log_det.sum(-1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._couple(x, context, inverse=False)

    def inverse(self, y: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._couple(y, context, inverse=True)
