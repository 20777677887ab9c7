"""Reading what the StyleTalker stages need from a batch of dataset items."""

from __future__ import annotations

from typing import Any

import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.model import TalkingHead
from styletalker_core.model.clips import audio_context_frames


def batch_context(batch: dict[str, Any], samples_per_frame: int) -> int:
    """Frames of audio context on each side of the batch's windows."""
    return audio_context_frames(batch["frames"].shape[1], batch["audio"].shape[-1], samples_per_frame)


def batch_latents(batch: dict[str, Any], head: TalkingHead) -> tuple[torch.Tensor, torch.Tensor]:
    """(ws [b, t, l, w] of the frames, w_id [b, l, w] of the reference frame), from the latent cache
    when the dataset serves it, else by encoding the frames with the model's image encoder."""
    frames = batch["frames"]
    ws = batch["ws"] if "ws" in batch else head.encode_frames(frames.flatten(0, 1), 64).unflatten(0, frames.shape[:2])
    if "reference_ws" in batch:
        w_id = batch["reference_ws"]
    elif "reference_frame" in batch:
        w_id = head.encode_frames(batch["reference_frame"], 64)
    else:
        raise StyleTalkerError("the data give no reference frame; set reference = \"random\" in the dataset options")
    return ws, w_id
