"""Output heads that write W+ offsets on a chosen subset of layers (the recipe's layer mask)."""

from __future__ import annotations

import torch
from torch import nn


def resolve_layers(layers: list[int], num_ws: int, owner: str) -> list[int]:
    """The W+ layer indices an offset may change: ``layers`` (checked), or all when empty."""
    if not layers:
        return list(range(num_ws))
    bad = [index for index in layers if not 0 <= index < num_ws]
    if bad or len(set(layers)) != len(layers):
        raise ValueError(f"{owner}: layers {layers} must be distinct indices in 0..{num_ws - 1}")
    return sorted(layers)


class OffsetHead(nn.Module):
    """features [..., h] -> W+ offsets [..., l, w], zero outside ``layers``.

    The output layer starts at ``init_scale`` of the default initialisation, so offsets begin
    small and the composed latent starts near w_id.
    """

    layer_index: torch.Tensor  # buffer

    def __init__(self, in_dim: int, num_ws: int, w_dim: int, layers: list[int], init_scale: float = 0.1) -> None:
        super().__init__()
        self.num_ws, self.w_dim = num_ws, w_dim
        self.register_buffer("layer_index", torch.tensor(layers, dtype=torch.long), persistent=False)
        self.linear = nn.Linear(in_dim, len(layers) * w_dim)
        with torch.no_grad():
            self.linear.weight.mul_(init_scale)
            self.linear.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        selected = self.linear(features).unflatten(-1, (len(self.layer_index), self.w_dim))
        if len(self.layer_index) == self.num_ws:
            return selected
        out = selected.new_zeros(*features.shape[:-1], self.num_ws, self.w_dim)
        out[..., self.layer_index, :] = selected
        return out
