"""Reading what the StyleTalker stages need from a batch of dataset items."""

from __future__ import annotations

from typing import Any

import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import ImageEncoder


def audio_context_frames(batch: dict[str, Any], num_frames: int, samples_per_frame: int) -> int:
    """Frames of audio context on each side of the window (the dataset's audio_context_frames)."""
    extra = batch["audio"].shape[-1] // samples_per_frame - num_frames
    if extra < 0 or extra % 2:
        raise StyleTalkerError(f"dataset items carry {batch['audio'].shape[-1]} audio samples for {num_frames} frames; "
                               "expected the window's audio plus the same context on both sides")
    return extra // 2


@torch.no_grad()
def encode_images(encoder: ImageEncoder, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """images [n, 3, h, w] -> ws [n, l, w], resized to the encoder's resolution when needed."""
    size = encoder.resolution
    if images.shape[-2:] != (size, size):
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=True)
    return torch.cat([encoder.encode(chunk) for chunk in images.split(batch_size)])


def batch_latents(batch: dict[str, Any], encoder: ImageEncoder | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ws [b, t, l, w] of the frames, w_id [b, l, w] of the reference frame), from the latent cache
    when the dataset serves it, else by encoding the frames."""
    frames = batch["frames"]
    if "ws" in batch:
        ws = batch["ws"]
    elif encoder is not None:
        ws = encode_images(encoder, frames.flatten(0, 1)).unflatten(0, frames.shape[:2])
    else:
        raise StyleTalkerError("the data give no cached latents (ws) and no image encoder is available; set the "
                               "dataset's latent_cache or add [model.image_encoder]")
    if "reference_ws" in batch:
        w_id = batch["reference_ws"]
    elif "reference_frame" in batch and encoder is not None:
        w_id = encode_images(encoder, batch["reference_frame"])
    else:
        raise StyleTalkerError("the data give no reference frame; set reference = \"random\" in the dataset options")
    return ws, w_id
