"""The reconstruction objective of encoder training and joint autoencoding.

    L = l1 * mean(m * |x_hat - x|) + edges * |grad x_hat - grad x| + perceptual * P(x_hat, x)
        + hard_pixels * mean of the largest hard_fraction of per-pixel errors
        + mouth * mean(|x_hat - x| inside the mouth's landmark box) + eyes * (the same in the eyes' box)
        + readings * mean_f (O_f(x_hat) - O_f(x))^2     (a frozen factor oracle O, factors f)
        + latent * ||ws - w_avg||^2 + delta * sum_i ||ws_i - ws_0||_p   (e4e's delta regularisation)

m = 1 + detail * (local high-pass energy of x) weights eyes, lips and outlines (1 when
detail = 0; styletalker_core.losses.detail_weights). The hard-pixel term (online hard example
mining over pixels) puts the gradient where the reconstruction is still wrong: once the face
is right, that is a feature the generator does not draw yet, such as an open mouth. The mouth
term needs the frames' 68 landmarks: its box (grown by ``mouth_margin`` of its size on each side, as is the eyes' box)
holds a few percent of a 64 px face, so without it the lips get a few percent of the gradient.
The readings term asks a frozen factor oracle to read the same mouth and eye openness from the
reconstruction as from the target (styletalker_core.losses.readings says why).
P is LPIPS when weights are given, else MS-SSIM (styletalker_core.losses). Axis letters:
b batch, l W+ layers, w latent width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from styletalker_core.interfaces.image_encoder import psnr
from styletalker_core.losses import (
    DEFAULT_READINGS,
    REGION_MARGIN,
    build_perceptual_loss,
    delta_regularisation,
    detail_weights,
    gradient_l1,
    landmark_box_mask,
    latent_distance,
    load_frozen_oracle,
    masked_l1,
    reading_error,
    weighted_regions,
)


class ReconstructionObjective:
    """Weighted sum of the terms above, with each term's batch mean returned for logging."""

    def __init__(self, l1: float, perceptual: float, latent: float, delta: float, delta_norm: float = 2.0,
                 perceptual_kind: Literal["auto", "lpips", "ms_ssim"] = "auto", lpips_weights: str = "",
                 edges: float = 0.0, detail: float = 0.0, hard_pixels: float = 0.0, hard_fraction: float = 0.03,
                 mouth: float = 0.0, mouth_margin: float = REGION_MARGIN, eyes: float = 0.0,
                 readings: float = 0.0, readings_oracle: str = "",
                 readings_factors: Sequence[str] | None = None) -> None:
        self.l1, self.perceptual_weight, self.latent, self.delta, self.delta_norm = l1, perceptual, latent, delta, delta_norm
        self.edges, self.detail = edges, detail
        self.regions = weighted_regions(mouth, eyes)
        self.region_margin = mouth_margin
        self.hard_pixels, self.hard_fraction = hard_pixels, hard_fraction
        self.perceptual = build_perceptual_loss(perceptual_kind, lpips_weights or None) if perceptual > 0 else None
        self.readings, self.readings_factors = readings, tuple(readings_factors or DEFAULT_READINGS)
        self.readings_oracle = load_frozen_oracle(readings_oracle) if readings > 0 else None

    def to(self, device: torch.device) -> ReconstructionObjective:
        for module in (self.perceptual, self.readings_oracle):
            if module is not None:
                module.to(device)
        return self

    @property
    def needs_landmarks(self) -> bool:
        return bool(self.regions)

    def __call__(self, images: torch.Tensor, reconstruction: torch.Tensor, ws: torch.Tensor, w_avg: torch.Tensor,
                 active_layers: int | None = None, landmarks: torch.Tensor | None = None,
                 landmark_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """images, reconstruction [b, 3, h, w] in [-1, 1]; ws [b, l, w]; w_avg [w] or [l, w];
        ``active_layers``: layers with their own code (delta regularisation up to them; None: all);
        ``landmarks`` [b, 68, 2] pixel positions in frames of ``landmark_size`` (h, w; default the
        images' size), needed when ``needs_landmarks``."""
        values: dict[str, float] = {}
        loss = images.new_zeros(())
        error = (reconstruction - images).abs()
        l1 = error.mean()
        values["l1"] = float(l1.detach())
        if self.detail > 0:
            l1 = (error * detail_weights(images, self.detail)).mean()
            values["detail_l1"] = float(l1.detach())
        loss = loss + self.l1 * l1
        if self.edges > 0:
            edges = gradient_l1(reconstruction, images).mean()
            values["edges"] = float(edges.detach())
            loss = loss + self.edges * edges
        if self.hard_pixels > 0:
            hard = hardest_pixels(error, self.hard_fraction).mean()
            values["hard_pixels"] = float(hard.detach())
            loss = loss + self.hard_pixels * hard
        if self.regions and landmarks is None:
            raise ValueError("the mouth and eyes terms need the frames' landmarks")
        for name, points, weight in self.regions:
            mask = landmark_box_mask(landmarks, points, tuple(images.shape[-2:]), self.region_margin, landmark_size)
            region = masked_l1(error, mask).mean()
            values[f"{name}_l1"] = float(region.detach())
            loss = loss + weight * region
        if self.readings_oracle is not None:
            readings = reading_error(self.readings_oracle, reconstruction, images, self.readings_factors)
            values["readings"] = float(readings.detach())
            loss = loss + self.readings * readings
        if self.perceptual is not None:
            perceptual = self.perceptual(reconstruction, images).mean()
            values[self.perceptual.kind] = float(perceptual.detach())
            loss = loss + self.perceptual_weight * perceptual
        if self.latent > 0:
            latent = latent_distance(ws, w_avg).mean()
            values["latent"] = float(latent.detach())
            loss = loss + self.latent * latent
        if self.delta > 0:
            delta = delta_regularisation(ws, active_layers, self.delta_norm).mean()
            values["delta"] = float(delta.detach())
            loss = loss + self.delta * delta
        values["psnr"] = float(psnr(reconstruction.detach().clamp(-1, 1), images).mean())
        return loss, values


def hardest_pixels(error: torch.Tensor, fraction: float) -> torch.Tensor:
    """error [b, c, h, w] (per-pixel absolute error) -> [b]: mean channel-summed error of each
    image's ``fraction`` largest-error pixels (at least one pixel)."""
    per_pixel = error.sum(1).flatten(1)
    count = max(1, int(round(fraction * per_pixel.shape[1])))
    return per_pixel.topk(count, dim=1).values.mean(1)


def progressive_stage(step: int, start: int, every: int, num_ws: int) -> int:
    """e4e's progressive schedule: 0 (one code for all layers) for ``start`` steps, then one more
    layer delta every ``every`` steps, up to num_ws. ``every`` <= 0 turns it off (all deltas at once)."""
    if every <= 0:
        return num_ws
    if step < start:
        return 0
    return min(num_ws, 1 + (step - start) // every)
