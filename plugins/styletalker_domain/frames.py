"""Single images out of clip batches, for the image-level stages of domain pretraining.

Axis letters: b batch, t frames of a window, n images (b * t), h/w height/width.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from styletalker_core.losses import require_landmarks


def images_of(batch: dict[str, Any], resolution: int) -> torch.Tensor:
    """batch["frames"] [b, t, 3, h, w] (or [b, 3, h, w]) in [-1, 1] -> images [n, 3, r, r] at ``resolution``."""
    frames = batch["frames"]
    if frames.ndim == 5:
        frames = frames.flatten(0, 1)
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames [b, t, 3, h, w] or [b, 3, h, w], got {tuple(frames.shape)}")
    frames = frames.float()
    if frames.shape[-2:] != (resolution, resolution):
        frames = F.interpolate(frames, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return frames


def landmarks_of(batch: dict[str, Any]) -> tuple[torch.Tensor, tuple[int, int]]:
    """batch["landmarks"] [b, t, 68, 2] (or [b, 68, 2]) -> (landmarks [n, 68, 2] in the image order of
    ``images_of``, (h, w) of the frames they were measured in)."""
    landmarks = require_landmarks(batch, "the mouth and eyes terms need",
                                  otherwise=", or objective.mouth_weight = 0 and objective.eyes_weight = 0")
    if landmarks.ndim == 4:
        landmarks = landmarks.flatten(0, 1)
    return landmarks.float(), tuple(batch["frames"].shape[-2:])


def dataset_images(dataset: Dataset, items: int, resolution: int) -> torch.Tensor:
    """Frames of ``dataset[0..items-1]`` (deterministic by index) -> [n, 3, r, r] in [-1, 1]."""
    images = []
    for index in range(items):
        item = dataset[index]
        images.append(images_of({"frames": item["frames"].unsqueeze(0)}, resolution))
    return torch.cat(images)
