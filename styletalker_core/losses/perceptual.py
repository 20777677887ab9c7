"""The perceptual term of reconstruction losses: LPIPS when the user supplies its weights, else MS-SSIM.

Both are distances per image (0 for identical images), so stages weight and average them
the same way whichever is active. Stages of every issue use :func:`build_perceptual_loss`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from styletalker_core.losses.lpips import LPIPS
from styletalker_core.losses.ssim import MSSSIMLoss

LOG = logging.getLogger(__name__)
PerceptualKind = Literal["auto", "lpips", "ms_ssim"]


class PerceptualLoss(nn.Module):
    """forward(x, y): x, y [b, 3, h, w] in [-1, 1] -> perceptual distance per image [b].

    ``kind`` says which distance is active ("lpips" or "ms_ssim"). The module holds no
    trainable parameters (LPIPS weights are frozen).
    """

    def __init__(self, distance: nn.Module, kind: str) -> None:
        super().__init__()
        self.distance = distance
        self.kind = kind
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(x, y)


def build_perceptual_loss(
    kind: PerceptualKind = "auto",
    lpips_weights: str | Path | None = None,
    ms_ssim_scales: int = 0,
) -> PerceptualLoss:
    """The perceptual distance of a recipe.

    ``kind="auto"``: LPIPS when ``lpips_weights`` names a file, else MS-SSIM (``ms_ssim_scales``
    dyadic scales; 0 picks as many as the image size allows). ``"lpips"`` requires the weights.
    """
    if kind == "lpips" or (kind == "auto" and lpips_weights):
        from styletalker_core.errors import StyleTalkerError

        if not lpips_weights:
            raise StyleTalkerError("perceptual loss 'lpips' needs lpips_weights = a local safetensors file; "
                                   "set it, or use perceptual = 'ms_ssim'")
        model = LPIPS()
        model.load_weights(lpips_weights)
        LOG.info("perceptual loss: LPIPS-VGG16 from %s", lpips_weights)
        return PerceptualLoss(model.eval(), "lpips")
    LOG.info("perceptual loss: MS-SSIM")
    return PerceptualLoss(MSSSIMLoss(scales=ms_ssim_scales), "ms_ssim")
