"""Fitting a motion-source latent sequence to the length of the driving audio."""

from __future__ import annotations

from typing import Literal

import torch

MotionFit = Literal["loop", "trim"]


def output_frames(audio_frames: int, motion_frames: int | None, mode: MotionFit) -> int:
    """Frames of the generated video: the audio's, or with ``trim`` the shorter of audio and motion."""
    if motion_frames is None or mode == "loop":
        return audio_frames
    if mode == "trim":
        return min(audio_frames, motion_frames)
    raise ValueError(f"motion fit {mode!r}: use 'loop' or 'trim'")


def fit_motion(z: torch.Tensor, num_frames: int) -> torch.Tensor:
    """z [..., T, z] -> [..., num_frames, z]: trimmed when longer; when shorter, looped back and
    forth (0, 1, .., T-1, T-2, .., 1, 0, 1, ..) so pose never jumps at a loop seam."""
    length = z.shape[-2]
    if length == 0:
        raise ValueError("the motion source has no frames")
    if length >= num_frames:
        return z[..., :num_frames, :]
    if length == 1:
        return z.expand(*z.shape[:-2], num_frames, z.shape[-1])
    period = 2 * (length - 1)
    position = torch.arange(num_frames, device=z.device) % period
    index = torch.where(position < length, position, period - position)
    return z.index_select(-2, index)


def fit_motion_span(z: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Frames [start, stop) of ``fit_motion(z, n)`` for any n >= stop: z [..., T, z] -> [..., stop - start, z],
    without building the frames before ``start``."""
    length = z.shape[-2]
    if length == 0:
        raise ValueError("the motion source has no frames")
    if stop <= length:
        return z[..., start:stop, :]
    index = torch.arange(start, stop, device=z.device)
    if length == 1:
        index = torch.zeros_like(index)
    else:
        period = 2 * (length - 1)
        position = index % period
        index = torch.where(position < length, position, period - position)
    return z.index_select(-2, index)
