"""Sizes of the clip windows datasets deliver (frames plus audio with context on both sides)."""

from __future__ import annotations

from styletalker_core.errors import StyleTalkerError


def audio_context_frames(num_frames: int, audio_samples: int, samples_per_frame: int = 640) -> int:
    """Frames of audio context on each side of a window of ``num_frames`` frames whose audio has
    ``audio_samples`` samples: (audio frames - num_frames) / 2 (a dataset's audio_context_frames)."""
    extra = audio_samples // samples_per_frame - num_frames
    if extra < 0 or extra % 2:
        raise StyleTalkerError(f"dataset items carry {audio_samples} audio samples for {num_frames} frames; "
                               "expected the window's audio plus the same context on both sides")
    return extra // 2
