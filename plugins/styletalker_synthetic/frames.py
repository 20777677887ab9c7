"""Labelled frames for training and testing the factor oracle.

Factors are drawn independently and broadly (every pose in the motion model's range, eyes
and mouth anywhere from closed to open), which covers what clips contain and more, and
rendered in batches. Identities are fresh draws from the identity distribution; the
evaluation set uses a separate stream, so its identities are never seen in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from styletalker_core.data.synthetic.identity import IDENTITY_DIM
from styletalker_core.data.synthetic.motion import POSE_LIMITS
from styletalker_core.data.synthetic.renderer import render_faces


def sample_factors(rng: np.random.Generator, count: int) -> dict[str, torch.Tensor]:
    """Random factors of ``count`` frames: identity [n, IDENTITY_DIM], pose [n, 3] degrees, eye_open,
    mouth_open, mouth_width [n]."""
    eyes_open = rng.random(count) < 0.5
    eye_open = np.where(eyes_open, rng.uniform(0.85, 1.0, count), rng.uniform(0.0, 1.0, count))
    mouth_open = np.where(rng.random(count) < 0.15, 0.0, rng.uniform(0.0, 1.0, count))
    return {
        "identity": torch.from_numpy(rng.beta(1.3, 1.3, (count, IDENTITY_DIM)).astype(np.float32)),
        "pose": torch.from_numpy((rng.uniform(-1, 1, (count, 3)) * POSE_LIMITS).astype(np.float32)),
        "eye_open": torch.from_numpy(eye_open.astype(np.float32)),
        "mouth_open": torch.from_numpy(mouth_open.astype(np.float32)),
        "mouth_width": torch.from_numpy(rng.uniform(0.0, 1.0, count).astype(np.float32)),
    }


def render_labelled_frames(seed: int, count: int, resolution: int = 64, chunk: int = 256) -> dict[str, torch.Tensor]:
    """``count`` random labelled frames: "images" uint8 [n, 3, h, w] plus the factor labels."""
    rng = np.random.default_rng([seed, 0x0AC1E])
    labels = sample_factors(rng, count)
    images = []
    for start in range(0, count, chunk):
        part = {k: v[start:start + chunk] for k, v in labels.items()}
        rendered = render_faces(part["identity"], part["pose"], part["eye_open"], part["mouth_open"],
                                part["mouth_width"], resolution=resolution)
        images.append((rendered * 255 + 0.5).clamp(0, 255).to(torch.uint8))
    return {"images": torch.cat(images), **labels}


def degrade(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mild blur and noise like a generator's output: images [b, 3, h, w] in [-1, 1] -> same shape.

    Half of the images get a Gaussian blur with sigma in [0.3, 1.2] pixels; all get Gaussian
    noise with a standard deviation in [0, 0.03].
    """
    b, c, h, w = images.shape
    radius = 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    sigma = 0.3 + 0.9 * torch.rand(b, generator=generator)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    identity = (offsets == 0).float()[None].expand(b, -1)
    kernel = torch.where((torch.rand(b, generator=generator) < 0.5)[:, None], kernel, identity)
    kernel = kernel.repeat_interleave(c, dim=0).to(images.device)  # [b * c, 5]
    flat = F.pad(images.reshape(1, b * c, h, w), (radius,) * 4, mode="replicate")
    flat = F.conv2d(flat, kernel.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.conv2d(flat, kernel.view(b * c, 1, -1, 1), groups=b * c)
    noise = 0.03 * torch.rand(b, 1, 1, 1, generator=generator)
    return flat.reshape(b, c, h, w) + (noise * torch.randn(images.shape, generator=generator)).to(images.device)


class LabelledFrames(Dataset):
    """Items {"images": [3, h, w] in [-1, 1], and every label}. Index i uses frame i % n
    (the ClipDataset indexing contract); augmentation is applied per batch (``degrade``)."""

    def __init__(self, frames: dict[str, torch.Tensor]) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames["images"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        position = index % len(self)
        image = self.frames["images"][position].float() / 127.5 - 1
        return {"images": image, **{k: v[position] for k, v in self.frames.items() if k != "images"}}
