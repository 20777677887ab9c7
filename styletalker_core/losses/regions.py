"""Landmark regions of face images, for losses that weight a small feature (mouth, eyes) up.

A pixel loss averaged over a 64 px face gives the mouth a few percent of its gradient: a
decoder learns outline and colours long before the lips. Weighting the error inside the
mouth's bounding box (from the 68 landmarks that preprocessing stores for real clips and the
synthetic domain projects for its own) puts that gradient back where the task needs it.
Axis letters: n images, p points, h/w height/width.
"""

from __future__ import annotations

from typing import Any

import torch

from styletalker_core.errors import StyleTalkerError

MOUTH_POINTS = slice(48, 68)  # iBUG 300-W outer and inner lip contours
EYE_POINTS = slice(36, 48)  # both eyes' contours (one box spanning the two)
REGION_MARGIN = 0.25  # a region's box grows by this share of its size on every side (lips: chin, cheeks)


def weighted_regions(mouth: float, eyes: float) -> list[tuple[str, slice, float]]:
    """(name, landmark points, weight) of the region terms with a positive weight: "mouth", "eyes"."""
    return [(name, points, weight) for name, points, weight in
            (("mouth", MOUTH_POINTS, mouth), ("eyes", EYE_POINTS, eyes)) if weight > 0]


def require_landmarks(batch: dict[str, Any], needed_by: str, otherwise: str = "") -> torch.Tensor:
    """batch["landmarks"] ([b, t, 68, 2] or [b, 68, 2]); a clear error naming ``needed_by`` when the
    dataset does not serve them (``otherwise``: the alternative to suggest)."""
    landmarks = batch.get("landmarks")
    if landmarks is None:
        raise StyleTalkerError(
            f"{needed_by} the frames' 68 landmarks: set landmarks = true in [data.train] (clips from "
            f"`styletalker preprocess` and `styletalker data synth` have them){otherwise}"
        )
    return landmarks


def landmark_box_mask(landmarks: torch.Tensor, points: slice, size: tuple[int, int], margin: float,
                      source_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Soft mask of the bounding boxes of ``points`` of each image's landmarks.

    landmarks [n, 68, 2] (x, y) pixel positions in images of ``source_size`` (h, w; default
    ``size``); the box grows by ``margin`` times its larger side on every side, and its edge is
    a one-pixel ramp -> mask [n, 1, h, w] in [0, 1] at ``size``.
    """
    h, w = size
    src_h, src_w = source_size or size
    selected = landmarks[:, points].float() * torch.tensor([w / src_w, h / src_h], device=landmarks.device)
    low, high = selected.amin(dim=1), selected.amax(dim=1)  # [n, 2]
    pad = (high - low).amax(dim=1, keepdim=True) * margin
    low, high = low - pad, high + pad
    xs = torch.arange(w, device=landmarks.device, dtype=torch.float32)
    ys = torch.arange(h, device=landmarks.device, dtype=torch.float32)
    inside_x = (torch.minimum(xs - low[:, :1], high[:, :1] - xs) + 0.5).clamp(0, 1)  # [n, w]
    inside_y = (torch.minimum(ys - low[:, 1:], high[:, 1:] - ys) + 0.5).clamp(0, 1)  # [n, h]
    return (inside_y[:, :, None] * inside_x[:, None, :])[:, None]


def masked_l1(error: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel absolute error [n, c, h, w] and mask [n, 1, h, w] -> [n]: mean error inside the mask
    (0 for an image whose mask is empty)."""
    weighted = (error * mask).sum(dim=(1, 2, 3))
    area = mask.sum(dim=(1, 2, 3)) * error.shape[1]
    return weighted / area.clamp_min(1.0)
