"""Multi-scale structural similarity (MS-SSIM, Wang, Simoncelli and Bovik 2003) as a loss.

The dyadic pyramid of the paper: SSIM's contrast-structure term at every scale, its
luminance term at the coarsest, the image halved (2x2 average) between scales. The
Gaussian window is separable (two 1-D convolutions), with reflect padding so that scales
smaller than the window still work; at 64 px this is about 20 times faster than kornia's
full-resolution ``MS_SSIMLoss`` (which blurs every scale at full size with windows up to
33 taps) and is what makes it usable in CPU training loops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Weights of the five scales in Wang et al. (2003); fewer scales use the first ones, renormalised.
SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``size`` taps (odd) -> [size]."""
    if size % 2 != 1:
        raise ValueError(f"window size must be odd, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    window = torch.exp(-(x**2) / (2 * sigma**2))
    return (window / window.sum()).float()


def default_scales(size: int, smallest: int = 8) -> int:
    """How many dyadic scales fit an image of ``size`` pixels while the smallest stays >= ``smallest`` (1..5)."""
    return max(1, min(len(SCALE_WEIGHTS), int(math.floor(math.log2(max(size, 1) / smallest))) + 1))


class MultiScaleSSIM(nn.Module):
    """MS-SSIM between two batches of images.

    ``forward(x, y)``: x, y [b, c, h, w] with values spanning ``data_range`` (2 for [-1, 1]
    images) -> MS-SSIM per image [b], 1 for identical images. Channels are scored
    separately and averaged.
    """

    window: torch.Tensor  # buffer: the 1-D Gaussian taps

    def __init__(self, scales: int = 0, window: int = 11, sigma: float = 1.5, data_range: float = 2.0,
                 k1: float = 0.01, k2: float = 0.03) -> None:
        super().__init__()
        self.scales = scales  # 0: as many as fit (see default_scales)
        self.data_range = data_range
        self.c1 = (k1 * data_range) ** 2
        self.c2 = (k2 * data_range) ** 2
        self.register_buffer("window", gaussian_window(window, sigma), persistent=False)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur of [n, c, h, w] with reflect padding (size kept)."""
        channels = x.shape[1]
        taps = self.window.numel()
        pad = taps // 2
        kernel = self.window.to(x.dtype)
        horizontal = kernel.view(1, 1, 1, taps).expand(channels, 1, 1, taps)
        vertical = kernel.view(1, 1, taps, 1).expand(channels, 1, taps, 1)
        x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), horizontal, groups=channels)
        return F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), vertical, groups=channels)

    def _terms(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(SSIM, contrast-structure) means per image and channel, each [b, c]."""
        b = x.shape[0]
        # One blur call for the five moments: stack them along the channel axis.
        moments = self._blur(torch.cat([x, y, x * x, y * y, x * y], dim=1))
        mu_x, mu_y, xx, yy, xy = moments.chunk(5, dim=1)
        var_x = (xx - mu_x**2).clamp_min(0)
        var_y = (yy - mu_y**2).clamp_min(0)
        cov = xy - mu_x * mu_y
        luminance = (2 * mu_x * mu_y + self.c1) / (mu_x**2 + mu_y**2 + self.c1)
        contrast_structure = (2 * cov + self.c2) / (var_x + var_y + self.c2)
        ssim = luminance * contrast_structure
        return ssim.reshape(b, x.shape[1], -1).mean(-1), contrast_structure.reshape(b, x.shape[1], -1).mean(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4:
            raise ValueError(f"MS-SSIM needs two [b, c, h, w] batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        scales = self.scales or default_scales(min(x.shape[-2:]))
        weights = torch.tensor(SCALE_WEIGHTS[:scales], dtype=x.dtype, device=x.device)
        weights = weights / weights.sum()
        score = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
        for scale in range(scales):
            ssim, contrast_structure = self._terms(x, y)
            # Negative terms would make fractional powers undefined: clamp as is common practice.
            term = ssim if scale == scales - 1 else contrast_structure
            score = score * term.clamp_min(1e-6) ** weights[scale]
            if scale < scales - 1:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        return score.mean(dim=1)


class MSSSIMLoss(nn.Module):
    """1 - MS-SSIM, per image [b]: 0 for identical images. Images in [-1, 1]."""

    def __init__(self, scales: int = 0) -> None:
        super().__init__()
        self.ms_ssim = MultiScaleSSIM(scales=scales, data_range=2.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.ms_ssim(x, y)
