"""Reading the files of an EvalJob into an EvalItem (frames in [-1, 1], audio at 16 kHz, labels)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.evaluate.pairing import ClipRef, EvalJob
from styletalker_core.interfaces.metric import EvalItem

FPS = 25
SAMPLE_RATE = 16000


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 RGB [t, h, w, 3] (or one image [h, w, 3]) -> float32 [t, 3, h, w] (or [3, h, w]) in [-1, 1]."""
    pixels = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.array(frames, copy=True))
    if pixels.dtype != torch.uint8:
        raise StyleTalkerError(f"expected uint8 images, got {pixels.dtype}")
    return pixels.movedim(-1, -3).float() / 127.5 - 1.0


def read_labels(path: Path) -> dict[str, torch.Tensor]:
    """Per-frame labels name -> [t, ...] from a .npz (no pickles) or a JSON object of arrays."""
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {name: torch.as_tensor(archive[name]).float() for name in archive.files}
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise StyleTalkerError(f"{path}: labels JSON must be an object of name -> per-frame values")
        return {name: torch.tensor(values, dtype=torch.float32) for name, values in data.items()}
    raise StyleTalkerError(f"{path}: labels must be a .npz or .json file")


class ClipCache:
    """Opened clip datasets, so many jobs share one reader per dataset."""

    def __init__(self) -> None:
        self._readers: dict[Path, Any] = {}

    def clip(self, ref: ClipRef) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(frames [t, 3, h, w] in [-1, 1], audio [s], labels name -> [t, ...]) of a dataset clip."""
        from styletalker_core.data.shards import ShardReader

        reader = self._readers.get(ref.root)
        if reader is None:
            reader = self._readers[ref.root] = ShardReader(ref.root)
        if ref.clip_id not in reader.records:
            raise StyleTalkerError(f"{ref.root}: has no clip {ref.clip_id!r}")
        record = reader.records[ref.clip_id]
        if record.get("fps", FPS) != FPS or record.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE:
            raise StyleTalkerError(f"{ref}: clips must be at {FPS} fps and {SAMPLE_RATE} Hz")
        return frames_to_tensor(reader.frames(ref.clip_id)), reader.audio(ref.clip_id).float(), reader.labels(ref.clip_id)


def _read_video(path: Path) -> torch.Tensor:
    from styletalker_core.media import read_video_frames

    return frames_to_tensor(read_video_frames(path, fps=FPS))


def _read_audio_or_none(path: Path) -> torch.Tensor | None:
    from styletalker_core.media import NoAudioTrackError, read_audio

    try:
        return torch.from_numpy(read_audio(path, SAMPLE_RATE))
    except NoAudioTrackError:
        return None


def load_job(job: EvalJob, clips: ClipCache | None = None) -> EvalItem:
    """Read every file of ``job``. Audio: ``job.audio``, else the generated video's own track, else the
    reference clip's or reference video's; an empty tensor when there is none. The reference image
    is ``job.reference_image``, else the first reference frame."""
    from styletalker_core.media import read_image

    clips = clips or ClipCache()
    item = EvalItem(frames=_read_video(job.generated), audio=torch.zeros(0), fps=FPS, sample_rate=SAMPLE_RATE)
    audio = _read_audio_or_none(job.audio) if job.audio else None
    if job.audio and audio is None:
        raise StyleTalkerError(f"{job.audio}: has no audio track")
    if audio is None:
        audio = _read_audio_or_none(job.generated)
    if job.reference_clip is not None:
        item.reference_frames, clip_audio, item.labels = clips.clip(job.reference_clip)
        audio = audio if audio is not None else clip_audio
    if job.reference_video is not None:
        item.reference_frames = _read_video(job.reference_video)
        if audio is None:
            audio = _read_audio_or_none(job.reference_video)
    if job.reference_image is not None:
        item.reference_image = frames_to_tensor(read_image(job.reference_image))
    elif item.reference_frames is not None:
        item.reference_image = item.reference_frames[0]
    if job.motion_clip is not None:
        item.motion_frames, _, item.motion_labels = clips.clip(job.motion_clip)
    if job.motion_video is not None:
        item.motion_frames = _read_video(job.motion_video)
    if job.labels is not None:
        item.labels = {**item.labels, **read_labels(job.labels)}
    item.audio = audio if audio is not None else torch.zeros(0)
    return item
