"""Frame conventions shared by the video metrics: value ranges and generated/reference pairing.

Axis letters: t frames, c channels (RGB), h height, w width.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem

LOG = logging.getLogger(__name__)


def unit_range(frames: torch.Tensor) -> torch.Tensor:
    """Frames [..., 3, h, w] in [-1, 1] -> float32 in [0, 1] (values outside are clamped)."""
    return ((frames.detach().float() + 1.0) / 2.0).clamp(0.0, 1.0)


def to_uint8_images(frames: torch.Tensor) -> np.ndarray:
    """Frames [t, 3, h, w] in [-1, 1] -> uint8 RGB images [t, h, w, 3] (what dlib reads)."""
    pixels = (unit_range(frames) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())


def check_video(frames: torch.Tensor, what: str) -> None:
    """Raise a StyleTalkerError unless ``frames`` is [t, 3, h, w] with t >= 1."""
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[0] < 1:
        raise StyleTalkerError(f"{what}: expected RGB frames [t, 3, h, w] with t >= 1, got shape {tuple(frames.shape)}")


def resize_to(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Frames [t, 3, h, w] -> [t, 3, height, width] (antialiased bilinear; unchanged when equal)."""
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames.float(), size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def paired_frames(item: EvalItem) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated and reference frames, both [t, 3, h, w] in [-1, 1], ready to compare pixel by pixel.

    The reference is resized to the generated size; when the lengths differ, the first
    min(t_generated, t_reference) frames of each are used (a length mismatch of more than one
    frame is logged, since it usually means the wrong pair).
    """
    if item.reference_frames is None:
        raise StyleTalkerError("this metric needs reference frames: give a reference video for each generated one")
    check_video(item.frames, "generated video")
    check_video(item.reference_frames, "reference video")
    generated, reference = item.frames, item.reference_frames
    count = min(len(generated), len(reference))
    if abs(len(generated) - len(reference)) > 1:
        LOG.warning("generated video has %d frames, its reference %d: comparing the first %d", len(generated), len(reference), count)
    generated, reference = generated[:count], reference[:count]
    reference = resize_to(reference.to(generated.device), *generated.shape[-2:])
    return generated.float(), reference.float()
