"""Streaming mp4 writer: H.264 video plus an optional AAC audio track, frame-accurate length.

The file is written under a temporary name in the destination folder and renamed when
:meth:`VideoWriter.close` succeeds, so a crash never leaves a truncated mp4 under the real
name. The temporary is named after the output and the process (see
:mod:`styletalker_core.io.atomic`); one left by a killed process is removed the next
time the same output is written. Audio is encoded only up to the end of the frames written
so far and the rest is held back; on close the audio track is cut or zero-padded to exactly
``num_frames / fps`` seconds. Write audio in step with the frames (as :func:`write_video`
does) to keep memory flat.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from styletalker_core.io.atomic import remove_stale_temporaries, temporary_path_for
from styletalker_core.media.audio import SAMPLE_RATE
from styletalker_core.media.errors import MediaError

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer
    from av.video.stream import VideoStream

AAC_FRAME = 1024  # samples per AAC frame


class VideoWriter:
    """Write frames uint8 [h, w, 3] (RGB) and mono float32 audio to an H.264/AAC mp4 at ``path``.

    ``sample_rate=None`` writes no audio track. ``crf`` is x264's constant-rate factor
    (0 lossless, 18 visually lossless, 23 default); ``preset`` its speed preset. The same frames
    always encode to the same bytes (x264's macroblock tree is off: it made them depend on process state).
    Use as a context manager, or call :meth:`close` (or :meth:`abort` on failure).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = 25.0,
        sample_rate: int | None = SAMPLE_RATE,
        crf: int = 18,
        preset: str = "medium",
        audio_bitrate: int = 128_000,
    ) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.sample_rate = sample_rate
        self.crf = crf
        self.preset = preset
        self.num_frames = 0
        remove_stale_temporaries(self.path)
        self._temporary = temporary_path_for(self.path)
        self._container: OutputContainer | None = None
        self._video: VideoStream | None = None  # created on the first frame, when the size is known
        self._audio: AudioStream | None = None
        self._closed = False
        try:
            container = self._container = av.open(str(self._temporary), mode="w", format="mp4", options={"movflags": "+faststart"})
            if sample_rate is not None:
                audio = self._audio = container.add_stream("aac", rate=sample_rate)
                audio.layout = "mono"
                audio.bit_rate = audio_bitrate
        except BaseException:  # Ctrl-C or SIGTERM included: no temporary left behind
            self.abort()
            raise
        self._held: list[np.ndarray] = []  # audio not yet encoded
        self._held_count = 0
        self._audio_encoded = 0  # samples sent to the encoder

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _open_video(self, height: int, width: int) -> VideoStream:
        if height % 2 or width % 2:
            raise ValueError(f"{self.path}: H.264 needs even frame sizes, got {width}x{height}")
        assert self._container is not None  # opened by __init__
        # mbtree off: with it, this libx264 gives different bytes for the same frames depending on
        # what the process decoded before (seen after reading videos, threads=1 too), so a file
        # written twice was not the same file. Without it the same frames always encode the same.
        options = {"crf": str(self.crf), "preset": self.preset, "x264-params": "mbtree=0"}
        video = self._video = self._container.add_stream("libx264", rate=self.fps, options=options)
        video.width = width
        video.height = height
        video.pix_fmt = "yuv420p"
        video.time_base = 1 / self.fps
        return video

    def write_frames(self, frames: np.ndarray) -> None:
        """Append one frame uint8 [h, w, 3] or several [n, h, w, 3]; every frame must have the first frame's size."""
        import av

        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"write_frames: expected uint8 [n, h, w, 3], got {frames.dtype} {frames.shape}")
        video = self._video if self._video is not None else self._open_video(frames.shape[1], frames.shape[2])
        if (frames.shape[1], frames.shape[2]) != (video.height, video.width):
            raise ValueError(f"write_frames: frame size {frames.shape[2]}x{frames.shape[1]} differs from the first frame's")
        assert self._container is not None  # opened by __init__
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = self.num_frames
            self._container.mux(video.encode(frame))
            self.num_frames += 1
        self._encode_audio(self._audio_target())

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float32 samples [s] in [-1, 1] at ``sample_rate``."""
        if self._audio is None:
            raise ValueError(f"{self.path}: this writer has no audio track (sample_rate=None)")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size:
            self._held.append(samples)
            self._held_count += samples.size
        self._encode_audio(self._audio_target())

    def _audio_target(self) -> int:
        """Samples of audio that span the frames written so far."""
        if self.sample_rate is None:
            return 0
        return int(round(self.num_frames * self.sample_rate / self.fps))

    def _encode_audio(self, target: int, final: bool = False) -> None:
        """Encode held audio up to sample ``target`` in whole AAC frames (all of it when ``final``)."""
        import av

        if self._audio is None or self.sample_rate is None:  # no audio track
            return
        assert self._container is not None  # opened by __init__
        available = min(target, self._audio_encoded + self._held_count) - self._audio_encoded
        count = available if final else available - available % AAC_FRAME
        if count <= 0:
            return
        joined = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        chunk, rest = joined[:count], joined[count:]
        self._held = [rest] if rest.size else []
        self._held_count = rest.size
        for start in range(0, count, AAC_FRAME):
            block = np.clip(chunk[start : start + AAC_FRAME], -1.0, 1.0)
            frame = av.AudioFrame.from_ndarray(block[None, :], format="fltp", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._audio_encoded
            frame.time_base = Fraction(1, self.sample_rate)
            self._container.mux(self._audio.encode(frame))
            self._audio_encoded += block.size

    def close(self) -> Path:
        """Flush the encoders, fit the audio to the video length, and rename into place. Returns the path."""
        if self._closed:
            return self.path
        try:
            if self._video is None:
                raise MediaError(f"{self.path}: no frames were written; a video needs at least one frame", reason="no_frames")
            assert self._container is not None  # opened by __init__
            if self._audio is not None:
                target = self._audio_target()
                missing = target - self._audio_encoded - self._held_count
                if missing > 0:
                    self._held.append(np.zeros(missing, dtype=np.float32))
                    self._held_count += missing
                self._encode_audio(target, final=True)
                self._container.mux(self._audio.encode(None))
            self._container.mux(self._video.encode(None))
            self._container.close()
            self._closed = True
            os.replace(self._temporary, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop without producing the file; the temporary file is removed."""
        if not self._closed:
            self._closed = True
            try:
                if self._container is not None:
                    self._container.close()
            except Exception:  # noqa: BLE001 - the container may be half-initialised; nothing to keep
                pass
        self._temporary.unlink(missing_ok=True)


def write_video(
    path: str | Path,
    frames: np.ndarray | list[np.ndarray],
    audio: np.ndarray | None = None,
    fps: float = 25.0,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 18,
    preset: str = "medium",
) -> Path:
    """Write frames uint8 [t, h, w, 3] (array or iterable of [h, w, 3]) and optional mono audio [s] to an mp4.

    The audio track is cut or zero-padded to t / fps seconds. Returns the written path.
    """
    samples_per_frame = sample_rate / float(fps)  # of the audio, when given
    with VideoWriter(path, fps=fps, sample_rate=None if audio is None else sample_rate, crf=crf, preset=preset) as writer:
        for index, frame in enumerate(frames):
            if audio is not None:
                start = int(round(index * samples_per_frame))
                stop = int(round((index + 1) * samples_per_frame))
                writer.write_audio(audio[start:stop])
            writer.write_frames(frame)
    return writer.path
