"""Generating held-out clips again with a trained model, in both inference modes, as EvalItems.

- ``audio``: audio-driven. The reference image is the clip's first frame, the audio its own;
  head motion and blinks are drawn from the prior (seeded per clip).
- ``motion``: motion-controllable. Same reference and audio; motion comes from the next
  held-out clip (another identity and utterance), encoded by the model, fitted to the audio
  length by looping back and forth. Its frames and labels, fitted the same way, are the
  item's motion_frames and motion_labels, so per-frame comparisons line up.
- ``reconstruction``: the image encoder and generator alone, G(E(x)) of every frame of the
  clip: what the model's W+ space keeps of the clip. The bound of the other two modes (the
  "encoder's reconstruction error" that identity error is compared with); its motion source
  is the clip itself.

Every item keeps the clip's own frames as reference_frames and its labels (lips follow the
clip's audio in both modes), except for a clip whose audio was replaced by speech with its own
timing (``aligned = False``, styletalker_core/ablate/speech.py): audio mode only, and the item has
the reference image and the audio but no reference frames and no labels.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from styletalker_core.ablate.clips import HeldoutClip
from styletalker_core.interfaces.metric import EvalItem
from styletalker_core.model import TalkingHead, fit_motion

MODES = {"audio": "audio-driven", "motion": "motion-controllable", "reconstruction": "encoder reconstruction"}


def fitted_indices(length: int, count: int) -> torch.Tensor:
    """Source frame index of each of ``count`` output frames when a ``length``-frame motion is fitted (trimmed or looped)."""
    positions = torch.arange(length, dtype=torch.float32)[:, None]
    return fit_motion(positions, count)[:, 0].round().long()


def generate_items(
    head: TalkingHead,
    clips: list[HeldoutClip],
    mode: str,
    seed: int = 0,
    temperature: float = 1.0,
    pose_scale: float = 1.0,
) -> Iterator[tuple[str, EvalItem, dict[str, str]]]:
    """(name, item, source description) for every clip, generated in ``mode`` (a key of MODES)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    for index, clip in enumerate(clips):
        reference = clip.frames[0]
        source = {"clip": clip.clip_id, "mode": MODES[mode]}
        if not clip.aligned and mode != "audio":
            raise ValueError(f"clip {clip.clip_id}: its audio does not match its frames; only the audio mode can use it")
        if mode == "audio":
            generator = torch.Generator().manual_seed(seed + index)
            video = head.generate(reference, clip.audio, temperature=temperature, pose_scale=pose_scale, generator=generator)[0]
            item = EvalItem(frames=video.cpu(), audio=clip.audio, reference_frames=clip.frames if clip.aligned else None,
                            reference_image=reference, labels=clip.labels if clip.aligned else {})
        elif mode == "reconstruction":
            video = head.render(head.encode_frames(clip.frames)[None])[0]
            item = EvalItem(frames=video.cpu(), audio=clip.audio, reference_frames=clip.frames, reference_image=reference,
                            motion_frames=clip.frames, labels=clip.labels, motion_labels=clip.labels)
        else:
            motion = clips[(index + 1) % len(clips)]
            z = head.encode_motion(motion.frames, motion.audio)
            video = head.generate(reference, clip.audio, motion=z, motion_fit="loop", pose_scale=pose_scale)[0]
            chosen = fitted_indices(len(motion.frames), len(video))
            item = EvalItem(
                frames=video.cpu(), audio=clip.audio, reference_frames=clip.frames, reference_image=reference,
                motion_frames=motion.frames[chosen], labels=clip.labels,
                motion_labels={name: value[chosen] for name, value in motion.labels.items()},
            )
            source["motion_clip"] = motion.clip_id
        yield f"{clip.clip_id}", item, source
