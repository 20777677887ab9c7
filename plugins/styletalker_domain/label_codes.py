"""Label mapper: per-frame labels -> W+ codes, the generator's input in label-driven training.

On a domain whose frames are a function of known per-frame labels (the synthetic domain:
identity factors, pose, eye and mouth openness), a small MLP M from the standardised labels to
W+ gives the generator a clean code for every frame from the first step, so it learns to draw
small features such as the mouth as it learns the head (label_render.py). M is a training aid
and is not exported. Axis letters: n images, k label columns, l W+ layers, w latent width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from styletalker_domain.factors import label_rows, label_statistics

DEFAULT_LABELS = ("identity", "pose", "eye_open", "mouth_open", "mouth_width")
STATISTICS_ITEMS = 256


class LabelMapper(nn.Module):
    """Standardised per-frame labels [n, k] -> W+ codes [n, l, w] = ``base`` + MLP(labels).

    The last layer starts at zero, so every frame starts at ``base`` [w] (the generator's
    w_avg when the stage starts); ``mean`` and ``std`` [k] standardise the label columns."""

    mean: torch.Tensor  # buffer
    std: torch.Tensor  # buffer
    base: torch.Tensor  # buffer

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, base: torch.Tensor, num_ws: int, hidden: int = 256,
                 layers: int = 3) -> None:
        super().__init__()
        self.num_ws, self.w_dim = num_ws, base.numel()
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clamp_min(1e-3).clone())
        self.register_buffer("base", base.float().clone())
        blocks: list[nn.Module] = []
        width = mean.numel()
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        last = nn.Linear(width, num_ws * self.w_dim)
        self.net = nn.Sequential(*blocks, last)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """labels [n, k] -> ws [n, l, w]."""
        offsets = self.net((labels - self.mean) / self.std)
        return self.base + offsets.view(-1, self.num_ws, self.w_dim)


def build_label_mapper(dataset: Any, names: list[str], base: torch.Tensor, num_ws: int, hidden: int) -> LabelMapper:
    """A LabelMapper whose standardisation comes from ``dataset``'s first items."""
    mean, std = label_statistics(dataset, names, STATISTICS_ITEMS, rows_of=label_rows)
    return LabelMapper(mean, std, base, num_ws, hidden)
