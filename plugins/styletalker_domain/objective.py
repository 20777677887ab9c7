"""The reconstruction objective of encoder training, joint autoencoding and label rendering.

    L = l1_weight * mean(m * |x_hat - x|) + edges_weight * |grad x_hat - grad x|
        + perceptual_weight * P(x_hat, x)
        + hard_pixels_weight * mean of the largest hard_fraction of per-pixel errors
        + mouth_weight * mean(|x_hat - x| inside the mouth's landmark box) + eyes_weight * (the same in the eyes' box)
        + readings_weight * mean_f (O_f(x_hat) - O_f(x))^2     (a frozen factor oracle O, factors f)
        + latent_weight * ||ws - w_avg||^2 + delta_weight * sum_i ||ws_i - ws_0||_p   (e4e's delta regularisation)

Its options are one table, :class:`ObjectiveConfig` (``[stages.<stage>.objective]`` in a recipe),
shared by the three domain stages. m = 1 + detail * (local high-pass energy of x) weights eyes,
lips and outlines (1 when detail = 0; styletalker_core.losses.detail_weights). The hard-pixel term
(online hard example mining over pixels) puts the gradient where the reconstruction is still
wrong: once the face is right, that is a feature the generator does not draw yet, such as an open
mouth. The mouth term needs the frames' 68 landmarks: its box (grown by ``mouth_margin`` of its
size on each side, as is the eyes' box) holds a few percent of a 64 px face, so without it the
lips get a few percent of the gradient. The readings term asks a frozen factor oracle to read the
same mouth and eye openness from the reconstruction as from the target
(styletalker_core.losses.readings says why). P is LPIPS when weights are given, else MS-SSIM
(styletalker_core.losses). Axis letters: b batch, l W+ layers, w latent width.
"""

from __future__ import annotations

import attrs
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
from styletalker_core.losses.terms import ImageTermsConfig


@attrs.define(kw_only=True)
class ObjectiveConfig(ImageTermsConfig):
    """The reconstruction objective's options: the image terms (:class:`ImageTermsConfig`) and
    ``edges_weight``, ``detail``, ``hard_pixels_weight`` / ``hard_fraction``, ``mouth_margin``
    (the region boxes' growth), ``delta_weight`` / ``delta_norm`` (e4e's delta regularisation)."""

    latent_weight: float = 0.001
    edges_weight: float = 0.0
    detail: float = 0.0
    hard_pixels_weight: float = 0.0
    hard_fraction: float = 0.03
    mouth_margin: float = REGION_MARGIN
    delta_weight: float = 0.0002
    delta_norm: float = 2.0


@attrs.define(kw_only=True)
class RenderObjectiveConfig(ObjectiveConfig):
    """The label-rendering stage's defaults: no latent or delta term (its codes come from labels)."""

    latent_weight: float = 0.0
    delta_weight: float = 0.0


# The flat options the domain stages took before the objective became one table.
RENAMED_OPTIONS = {
    **{old: f"objective.{old}_weight" for old in ("l1", "edges", "hard_pixels", "mouth", "eyes", "readings",
                                                 "perceptual", "latent", "delta")},
    **{moved: f"objective.{moved}" for moved in ("detail", "hard_fraction", "mouth_margin", "readings_oracle",
                                                 "readings_factors", "perceptual_kind", "lpips_weights", "delta_norm")},
}


class ReconstructionObjective:
    """Weighted sum of the terms above, with each term's batch mean returned for logging."""

    def __init__(self, config: ObjectiveConfig) -> None:
        self.config = config
        self.regions = weighted_regions(config.mouth_weight, config.eyes_weight)
        self.perceptual = (build_perceptual_loss(config.perceptual_kind, config.lpips_weights or None)
                           if config.perceptual_weight > 0 else None)
        self.readings_factors = tuple(config.readings_factors or DEFAULT_READINGS)
        self.readings_oracle = load_frozen_oracle(config.readings_oracle) if config.readings_weight > 0 else None

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
        config = self.config
        values: dict[str, float] = {}
        loss = images.new_zeros(())
        error = (reconstruction - images).abs()
        l1 = error.mean()
        values["l1"] = float(l1.detach())
        if config.detail > 0:
            l1 = (error * detail_weights(images, config.detail)).mean()
            values["detail_l1"] = float(l1.detach())
        loss = loss + config.l1_weight * l1
        if config.edges_weight > 0:
            edges = gradient_l1(reconstruction, images).mean()
            values["edges"] = float(edges.detach())
            loss = loss + config.edges_weight * edges
        if config.hard_pixels_weight > 0:
            hard = hardest_pixels(error, config.hard_fraction).mean()
            values["hard_pixels"] = float(hard.detach())
            loss = loss + config.hard_pixels_weight * hard
        if self.regions and landmarks is None:
            raise ValueError("the mouth and eyes terms need the frames' landmarks")
        for name, points, weight in self.regions:
            assert landmarks is not None  # checked above
            mask = landmark_box_mask(landmarks, points, (images.shape[-2], images.shape[-1]), config.mouth_margin, landmark_size)
            region = masked_l1(error, mask).mean()
            values[f"{name}_l1"] = float(region.detach())
            loss = loss + weight * region
        if self.readings_oracle is not None:
            readings = reading_error(self.readings_oracle, reconstruction, images, self.readings_factors)
            values["readings"] = float(readings.detach())
            loss = loss + config.readings_weight * readings
        if self.perceptual is not None:
            perceptual = self.perceptual(reconstruction, images).mean()
            values[self.perceptual.kind] = float(perceptual.detach())
            loss = loss + config.perceptual_weight * perceptual
        if config.latent_weight > 0:
            latent = latent_distance(ws, w_avg).mean()
            values["latent"] = float(latent.detach())
            loss = loss + config.latent_weight * latent
        if config.delta_weight > 0:
            delta = delta_regularisation(ws, active_layers, config.delta_norm).mean()
            values["delta"] = float(delta.detach())
            loss = loss + config.delta_weight * delta
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
