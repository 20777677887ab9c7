"""Streaming video frame reading at a requested frame rate.

Frame k of the output shows the picture on screen at media time k / fps: the last decoded
frame whose timestamp is at most k / fps (the first frame stands in for times before it).
Timestamps are compared with a tolerance of 1 ms (containers that store milliseconds
round them). The output ends when the last source frame's display time is over, so a file written with N frames at 25 fps
reads back as exactly N frames at 25 fps, and a source of d seconds gives about ceil(fps * d). Only one or two decoded frames are held at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import attrs
import numpy as np

from styletalker_core.media.container import open_input, stream_duration
from styletalker_core.media.errors import MediaError, NoVideoTrackError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")


@attrs.frozen
class VideoInfo:
    """What the container says about a file (before any frame-rate conversion)."""

    width: int
    height: int
    fps: float  # average frame rate of the video track
    duration: float | None  # seconds of the video track, None when unknown
    num_frames: int  # frames in the video track as recorded, 0 when unknown
    has_audio: bool
    codec: str


def _video_stream(container, path: Path):  # noqa: ANN001, ANN202
    if not container.streams.video:
        raise NoVideoTrackError(f"{path}: has no video track")
    return container.streams.video[0]


def probe_video(path: str | Path) -> VideoInfo:
    """Size, frame rate, duration, frame count and audio presence of ``path``."""
    path = Path(path)
    with open_input(path, "video") as container:
        stream = _video_stream(container, path)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = stream_duration(container, stream)
        return VideoInfo(
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            fps=fps,
            duration=duration,
            num_frames=int(stream.frames or 0),
            has_audio=bool(container.streams.audio),
            codec=stream.codec_context.name,
        )


def iter_video_frames(
    path: str | Path,
    fps: float | None = 25.0,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield uint8 RGB frames [h, w, 3] of ``path`` resampled to ``fps`` (None: every decoded frame).

    Raises NoVideoTrackError when there is no video track, MediaError when decoding fails.
    """
    import av

    path = Path(path)
    with open_input(path, "video") as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        native = stream.average_rate or stream.guessed_rate or Fraction(25)
        count = 0

        def limited() -> bool:
            return max_frames is not None and count >= max_frames

        try:
            if fps is None:
                for frame in container.decode(stream):
                    if limited():
                        return
                    yield frame.to_ndarray(format="rgb24")
                    count += 1
                return
            step = Fraction(fps).limit_denominator(1001)
            tolerance = min(1e-3, 0.1 / float(fps))  # absorbs millisecond rounding of timestamps
            previous = None  # (array, time, duration) of the last decoded frame
            for frame in container.decode(stream):
                time = float(frame.time) if frame.time is not None else (0.0 if previous is None else previous[1] + previous[2])
                if frame.duration and frame.time_base:
                    duration = float(frame.duration * frame.time_base)
                else:
                    duration = float(1 / native)
                if previous is None:
                    previous = (frame.to_ndarray(format="rgb24"), time, duration)
                    continue
                while float(count / step) < time - tolerance:
                    if limited():
                        return
                    yield previous[0]
                    count += 1
                previous = (frame.to_ndarray(format="rgb24"), time, duration)
            if previous is not None:
                end = previous[1] + previous[2]
                while float(count / step) < end - tolerance:
                    if limited():
                        return
                    yield previous[0]
                    count += 1
        except av.error.FFmpegError as error:
            raise MediaError(f"{path}: video cannot be decoded ({error})") from None


def read_video_frames(path: str | Path, fps: float | None = 25.0, max_frames: int | None = None) -> np.ndarray:
    """All frames of ``path`` at ``fps`` as uint8 [t, h, w, 3]. For short clips; stream long ones with iter_video_frames."""
    frames = list(iter_video_frames(path, fps, max_frames))
    if not frames:
        raise MediaError(f"{path}: the video track has no frames", reason="no_frames")
    return np.stack(frames)
