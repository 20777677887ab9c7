"""Label-anchored autoencoding: a second, label-driven path into the generator, for labelled domains.

A joint autoencoder must discover every factor twice: the encoder has to put it in the codes
and the generator has to draw it, and neither moves first for a small feature such as the
mouth (factors.py describes that loop). On a domain whose frames are a function of known
per-frame labels (the synthetic domain: identity factors, pose, eye and mouth openness), a
label mapper M (an MLP from the standardised labels to W+) gives the generator a clean code
for every frame from step 0, so it learns to draw the mouth as it learns the head; the
encoder is then pulled onto M's codes (the anchor, a regression) while both paths reconstruct
the frames. Only the generator and the encoder are exported; M is a training aid, like the
factor probe. Axis letters: n images, k label columns, l W+ layers, w latent width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from styletalker_domain.factors import label_rows, label_statistics

DEFAULT_LABELS = ("identity", "pose", "eye_open", "mouth_open", "mouth_width")
STATISTICS_ITEMS = 256


class LabelMapper(nn.Module):
    """Standardised per-frame labels [n, k] -> W+ codes [n, l, w] around the generator's w_avg.

    The last layer starts at zero, so every frame starts at w_avg and the generator's average
    face; ``mean`` and ``std`` [k] standardise the label columns."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_ws: int, w_dim: int, hidden: int = 256,
                 layers: int = 3) -> None:
        super().__init__()
        self.num_ws, self.w_dim = num_ws, w_dim
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clamp_min(1e-3).clone())
        blocks: list[nn.Module] = []
        width = mean.numel()
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, num_ws * w_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, labels: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
        """labels [n, k], w_avg [w] -> ws [n, l, w]."""
        offsets = self.net((labels - self.mean) / self.std)
        return w_avg.detach() + offsets.view(-1, self.num_ws, self.w_dim)


def build_label_mapper(dataset: Any, names: list[str], num_ws: int, w_dim: int, hidden: int) -> LabelMapper:
    """A LabelMapper whose standardisation comes from ``dataset``'s first items."""
    mean, std = label_statistics(dataset, names, STATISTICS_ITEMS, rows_of=label_rows)
    return LabelMapper(mean, std, num_ws, w_dim, hidden)


def anchor_distance(encoded: torch.Tensor, label_codes: torch.Tensor) -> torch.Tensor:
    """encoded, label_codes [n, l, w] -> mean squared distance per element (scalar); the label codes are
    a fixed target here, so only the encoder moves towards them."""
    return (encoded - label_codes.detach()).pow(2).mean()
