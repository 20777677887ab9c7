"""Streaming video frame reading at a requested frame rate.

Frame k of the output shows the picture on screen at media time k / fps: the last decoded
frame whose timestamp is at most k / fps (the first frame stands in for times before it).
Timestamps are compared with a tolerance of 1 ms (containers that store milliseconds
round them). The output ends when the last source frame's display time is over, so a file written with N frames at 25 fps
reads back as exactly N frames at 25 fps, and a source of d seconds gives about ceil(fps * d). Only one or two decoded frames are held at a time.

Frames come out as they are shown, not as they are stored: the display matrix of phone videos
(a portrait video is stored landscape with a 90 degree rotation, the old ``rotate`` tag) is
applied the way FFmpeg's players apply it, rotations by multiples of 90 degrees and mirroring
included, and :func:`probe_video` reports the displayed size.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import attrs
import numpy as np

from styletalker_core.media.container import open_input, stream_duration
from styletalker_core.media.errors import MediaError, NoVideoTrackError

LOG = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")
MAX_HOLD_SECONDS = 60.0  # one picture shown longer than this at a requested fps: damaged timestamps


def _check_hold(path: Path, count: int, step: Fraction, until: float) -> None:
    """MediaError when one decoded picture would be repeated from output frame ``count`` up to
    time ``until``, more than MAX_HOLD_SECONDS: a damaged timestamp (a few kilobytes of file
    would otherwise stream out millions of copies of one frame)."""
    if until - float(count / step) > MAX_HOLD_SECONDS:
        raise MediaError(f"{path}: the frame timestamps jump from {float(count / step):.2f} s to {until:.2f} s; "
                         "the file is damaged (re-encode it)", reason="bad_timestamps")


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
    rotation: int = 0  # degrees counter-clockwise the stored frames are turned for display (width, height are the displayed ones)


def _video_stream(container, path: Path):  # noqa: ANN001, ANN202
    if not container.streams.video:
        raise NoVideoTrackError(f"{path}: has no video track")
    return container.streams.video[0]


def probe_video(path: str | Path) -> VideoInfo:
    """Size, frame rate, duration, frame count and audio presence of ``path``."""
    path = Path(path)
    with open_input(path, "video") as container:
        stream = _video_stream(container, path)
        if stream.codec_context is None:  # a track whose codec FFmpeg does not know (damaged header)
            raise MediaError(f"{path}: the video track's codec is not recognised; re-encode the file as H.264 MP4")
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = stream_duration(container, stream)
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        rotation = _first_frame_rotation(container, stream)
        if rotation % 180 == 90:
            width, height = height, width
        return VideoInfo(
            width=width,
            height=height,
            fps=fps,
            duration=duration,
            num_frames=int(stream.frames or 0),
            has_audio=bool(container.streams.audio),
            codec=stream.codec_context.name,
            rotation=rotation,
        )


def _display_matrix(frame) -> tuple[int, ...] | None:  # noqa: ANN001
    """The frame's display matrix (nine 32-bit integers, FFmpeg's layout), or None."""
    import av

    kind = getattr(getattr(getattr(av, "sidedata", None), "sidedata", None), "Type", None)
    kind = getattr(kind, "DISPLAYMATRIX", None)
    side_data = getattr(frame, "side_data", None)
    if kind is None or side_data is None:
        return None
    try:
        data = side_data.get(kind)
        return struct.unpack("<9i", bytes(data)[:36]) if data is not None else None
    except (struct.error, TypeError, ValueError):
        return None


def display_transform(frame, stream) -> tuple[int, Callable[[np.ndarray], np.ndarray] | None]:  # noqa: ANN001
    """(rotation in degrees counter-clockwise, function that turns a decoded array [h, w, 3] upright
    or None) for ``frame`` of ``stream``, following FFmpeg's autorotate: the frame's display matrix,
    else the stream's ``rotate`` tag (degrees clockwise)."""
    matrix = _display_matrix(frame)
    if matrix is not None:
        rotation = float(getattr(frame, "rotation", 0) or 0)
    else:
        try:
            rotation = -float(stream.metadata.get("rotate", 0))
        except (TypeError, ValueError):
            rotation = 0.0
    if math.isnan(rotation):
        return 0, None
    theta = -round(rotation)  # degrees clockwise, as FFmpeg's get_rotation
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    operations: list[Callable[[np.ndarray], np.ndarray]] = []
    if abs(theta - 90) < 1:
        if matrix is not None and matrix[3] > 0:
            operations.append(lambda a: a.transpose(1, 0, 2))  # transpose=cclock_flip
        else:
            operations.append(lambda a: np.rot90(a, -1))  # transpose=clock
    elif abs(theta - 180) < 1:
        if matrix is None or matrix[0] < 0:
            operations.append(lambda a: a[:, ::-1])
        if matrix is None or matrix[4] < 0:
            operations.append(lambda a: a[::-1])
    elif abs(theta - 270) < 1:
        if matrix is not None and matrix[3] < 0:
            operations.append(lambda a: a[::-1, ::-1].transpose(1, 0, 2))  # transpose=clock_flip
        else:
            operations.append(lambda a: np.rot90(a, 1))  # transpose=cclock
    elif abs(theta) < 1 or abs(theta - 360) < 1:
        if matrix is not None and matrix[4] < 0:
            operations.append(lambda a: a[::-1])
    else:
        LOG.warning("video rotated by %.0f degrees: only multiples of 90 are applied; frames are read unrotated", theta)
    if not operations:
        return 0, None

    def upright(array: np.ndarray) -> np.ndarray:
        for operation in operations:
            array = operation(array)
        return np.ascontiguousarray(array)

    return int(round(rotation)) % 360, upright


def _first_frame_rotation(container, stream) -> int:  # noqa: ANN001
    """The display rotation of the first decodable frame (0 when there is none or it cannot be decoded)."""
    import av

    try:
        for frame in container.decode(stream):
            return display_transform(frame, stream)[0]
    except (av.error.FFmpegError, ValueError):
        return 0
    return 0


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

        transform: list[Callable[[np.ndarray], np.ndarray] | None] = []

        def pixels(frame) -> np.ndarray:  # noqa: ANN001
            if not transform:
                transform.append(display_transform(frame, stream)[1])
            array = frame.to_ndarray(format="rgb24")
            return array if transform[0] is None else transform[0](array)

        try:
            if fps is None:
                for frame in container.decode(stream):
                    if limited():
                        return
                    yield pixels(frame)
                    count += 1
                return
            step = Fraction(fps).limit_denominator(1001)
            tolerance = min(1e-3, 0.1 / float(fps))  # absorbs millisecond rounding of timestamps
            previous = None  # (array, time, duration) of the last decoded frame
            for frame in container.decode(stream):
                time = float(frame.time) if frame.time is not None else (0.0 if previous is None else previous[1] + previous[2])
                duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else float(1 / native)
                if previous is None:
                    previous = (pixels(frame), time, duration)
                    continue
                _check_hold(path, count, step, time - tolerance)
                while float(count / step) < time - tolerance:
                    if limited():
                        return
                    yield previous[0]
                    count += 1
                previous = (pixels(frame), time, duration)
            if previous is not None:
                end = previous[1] + previous[2]
                _check_hold(path, count, step, end - tolerance)
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
