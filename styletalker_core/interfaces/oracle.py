"""Factor oracle: reads the ground-truth factors of a domain back from images."""

from __future__ import annotations

import abc

import torch
from torch import nn


class FactorOracle(nn.Module, abc.ABC):
    """Image -> per-factor readings (for the synthetic domain: mouth openness and width,
    yaw, pitch, roll, eye openness, identity vector).

    Attributes: resolution (input size; other sizes are resized by the oracle), factors
    (name -> reading width; 1 for scalars). Readings use the units of the domain's labels:
    for the synthetic domain mouth_open, mouth_width, eye_open in [0, 1], yaw, pitch, roll
    in degrees, identity [b, 20] factors in [0, 1] (docs/synthetic.md).
    """

    resolution: int
    factors: dict[str, int]

    @abc.abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images [b, 3, h, w] in [-1, 1] -> {factor: [b] for scalars, [b, k] for vectors}."""
