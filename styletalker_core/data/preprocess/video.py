"""Preprocessing one source video into aligned face clips.

Two passes over the decoded frames (so a long video never sits in memory): the first finds
the face and its landmarks in every frame and applies the face policy; the second crops the
kept frames, using landmarks smoothed over time, and writes each clip as its own shard as
soon as it is complete. A clip is a run of consecutive usable frames of at least
``min_clip_frames``, cut into parts of at most ``max_clip_frames``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, cast

import attrs
import numpy as np

from styletalker_core.data.preprocess.align import crop_face, ffhq_quad, map_points, quad_to_crop, smooth_landmarks
from styletalker_core.data.preprocess.faces import FACE_POLICIES, FaceAnalyzer, choose_face
from styletalker_core.data.preprocess.layouts import VideoJob
from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.errors import StyleTalkerError
from styletalker_core.media import MediaError, iter_video_frames, probe_video, read_audio

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS


@attrs.frozen
class PreprocessSettings:
    """How videos become clips (these are recorded in the output folder; a resumed run must match)."""

    resolution: int = 256
    face_policy: str = attrs.field(default="largest", validator=attrs.validators.in_(FACE_POLICIES))
    min_face_size: int = 64  # pixels: smaller detections count as "small_face"
    min_clip_frames: int = 25
    max_clip_frames: int = 500
    smooth_sigma: float = 2.0  # frames
    detect_every: int = 1  # run the detector on every n-th frame; frames between reuse its boxes
    detect_max_side: int = 640
    min_detection_score: float = 0.0


class VideoFailure(Exception):
    """A video that yields no clip; ``reason`` is a short tag for the report."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _runs(values: list[str]) -> list[tuple[int, int, str]]:
    """Collapse per-frame tags into runs (start, stop, tag)."""
    runs: list[tuple[int, int, str]] = []
    for index, value in enumerate(values):
        if runs and runs[-1][2] == value and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1, value)
        else:
            runs.append((index, index + 1, value))
    return runs


def _find_faces(job: VideoJob, settings: PreprocessSettings, analyzer: FaceAnalyzer) -> tuple[list[np.ndarray | None], list[str]]:
    """Pass 1: landmarks [68, 2] (or None) and the drop reason ("" when kept) of every frame."""
    landmarks: list[np.ndarray | None] = []
    reasons: list[str] = []
    boxes = None
    for index, frame in enumerate(iter_video_frames(job.path, fps=FPS)):
        if index % settings.detect_every == 0:
            boxes = analyzer.detect(frame)
        face, reason = choose_face(analyzer.faces(frame, boxes), settings.face_policy, settings.min_face_size)
        if reason and settings.face_policy == "fail":
            raise VideoFailure("face_policy", f"frame {index}: {reason.replace('_', ' ')} (face policy 'fail')")
        landmarks.append(None if face is None else face.landmarks)
        reasons.append(reason)
    return landmarks, reasons


def _plan_clips(reasons: list[str], settings: PreprocessSettings) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(segments of usable frames long enough, clip parts (start, stop) cut from them)."""
    segments = [(start, stop) for start, stop, reason in _runs(reasons) if not reason and stop - start >= settings.min_clip_frames]
    parts = []
    for start, stop in segments:
        count = math.ceil((stop - start) / settings.max_clip_frames)
        edges = np.linspace(start, stop, count + 1).round().astype(int)
        parts += [(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    return segments, parts


def _audio_slice(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    piece = audio[start * SAMPLES_PER_FRAME : stop * SAMPLES_PER_FRAME]
    missing = (stop - start) * SAMPLES_PER_FRAME - len(piece)
    return np.pad(piece, (0, missing)) if missing > 0 else piece


def process_video(job: VideoJob, writer: ShardWriter, settings: PreprocessSettings, analyzer: FaceAnalyzer) -> dict[str, Any]:
    """Turn ``job`` into clips written through ``writer``; returns its report (status "ok").

    Raises VideoFailure (with a reason tag) when the video yields no clip.
    """
    try:
        info = probe_video(job.path)
        audio = read_audio(job.path, SAMPLE_RATE)
    except MediaError as error:
        raise VideoFailure(error.reason, str(error)) from None
    if audio.size == 0:
        raise VideoFailure("empty_audio", f"{job.path}: the audio track is empty (zero length)")
    try:
        landmarks, reasons = _find_faces(job, settings, analyzer)
    except MediaError as error:
        raise VideoFailure(error.reason, str(error)) from None
    if not reasons:
        raise VideoFailure("no_frames", f"{job.path}: no video frames could be decoded")
    segments, parts = _plan_clips(reasons, settings)
    dropped = {reason: reasons.count(reason) for reason in sorted(set(reasons) - {""})}
    # usable runs too short to make a clip are dropped as well
    ranges = [(a, b, r or "short_segment") for a, b, r in _runs(reasons) if r or (a, b) not in segments]
    dropped_ranges = [[a, b, r] for a, b, r in ranges]
    short = sum(b - a for a, b, r in ranges if r == "short_segment")
    if short:
        dropped["short_segment"] = short
    if not parts:
        usable = reasons.count("")
        detail = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in dropped.items())
        raise VideoFailure(
            "no_face", f"{job.path}: no usable face run of {settings.min_clip_frames}+ frames ({usable} usable of {len(reasons)}; {detail})")

    # Smooth landmarks over each whole segment, so consecutive parts join without a jump.
    # The crop follows the smoothed landmarks; the stored landmarks are the detected ones in crop pixels.
    quads: dict[int, np.ndarray] = {}
    crop_landmarks: dict[int, np.ndarray] = {}
    for start, stop in segments:
        track = smooth_landmarks(np.stack(cast("list[np.ndarray]", landmarks[start:stop])), settings.smooth_sigma)  # usable: all found
        for offset, points in enumerate(track):
            frame_index = start + offset
            quads[frame_index] = ffhq_quad(points)
            affine = quad_to_crop(quads[frame_index], settings.resolution)
            crop_landmarks[frame_index] = map_points(np.asarray(landmarks[frame_index]), affine)

    clips = []
    part_index, crops = 0, []
    for index, frame in enumerate(iter_video_frames(job.path, fps=FPS)):
        if part_index == len(parts):
            break
        start, stop = parts[part_index]
        if index < start:
            continue
        crops.append(crop_face(frame, quads[index], settings.resolution))
        if index + 1 == stop:
            clip_id = f"{job.key}-{part_index:03d}"
            clip = Clip(
                clip_id=clip_id,
                frames=np.stack(crops),
                audio=_audio_slice(audio, start, stop),
                fps=FPS,
                sample_rate=SAMPLE_RATE,
                source=job.relative,
                landmarks=np.stack([crop_landmarks[i] for i in range(start, stop)]).astype(np.float32),
                meta=dict(job.meta) | {"video": job.relative, "start_frame": start},
            )
            writer.write(clip_id, [clip])
            clips.append({"clip_id": clip_id, "start_frame": start, "num_frames": stop - start})
            part_index, crops = part_index + 1, []
    if part_index != len(parts):
        raise StyleTalkerError(f"{job.path}: the second decoding pass ended early (frame count changed between passes)")
    return {
        "status": "ok",
        "clips": clips,
        "frames": len(reasons),
        "frames_kept": sum(c["num_frames"] for c in clips),
        "dropped": dropped,
        "dropped_ranges": dropped_ranges,
        "audio_seconds": round(audio.size / SAMPLE_RATE, 3),
        "video_seconds": round(len(reasons) / FPS, 3),
        "source_fps": round(info.fps, 3),
    }
