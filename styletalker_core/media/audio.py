"""Reading audio from any file FFmpeg decodes (wav, flac, mp3, m4a/aac, ogg, the audio track
of a video) as mono float32 at a chosen rate, in a stream; writing wav/flac.

Conventions: sample 0 of the result is media time 0 of the file. Samples that are NaN or
infinite (possible in float WAV files) are refused with a MediaError naming the file. A track that starts late is
padded with leading zeros; samples before time 0 (encoder priming) are dropped. Channels are
averaged to mono. Resampling uses FFmpeg's libswresample as frames are decoded, so memory
does not grow with the length of the file. In mp4/mov/m4a files the track length recorded in
the container is honoured, which removes the padding AAC adds to its last frame.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import attrs
import numpy as np

from styletalker_core.media.container import open_input, stream_duration
from styletalker_core.media.errors import MediaError, NoAudioTrackError

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus")
MAX_LEADING_SECONDS = 60.0  # a track said to start later than this: damaged timestamps, not silence to pad


@attrs.frozen
class AudioInfo:
    """What the container says about a file's first audio track (before any resampling)."""

    sample_rate: int
    channels: int
    duration: float | None  # seconds, None when the container does not say
    codec: str


def _audio_stream(container, path: Path):  # noqa: ANN001, ANN202
    if not container.streams.audio:
        raise NoAudioTrackError(f"{path}: has no audio track; give a file with sound")
    return container.streams.audio[0]


def probe_audio(path: str | Path) -> AudioInfo:
    """Sample rate, channel count, duration and codec of the first audio track of ``path``."""
    path = Path(path)
    with open_input(path, "media") as container:
        stream = _audio_stream(container, path)
        if stream.codec_context is None:  # a track whose codec FFmpeg does not know (damaged header)
            raise MediaError(f"{path}: the audio track's codec is not recognised; convert the file to WAV or FLAC")
        duration = stream_duration(container, stream)
        return AudioInfo(int(stream.rate or 0), int(stream.channels or 0), duration, stream.codec_context.name)


def _recorded_length(container, stream, sample_rate: int) -> int | None:  # noqa: ANN001
    """Samples at ``sample_rate`` the mp4/mov container records for the track, else None."""
    if "mp4" not in container.format.name and "mov" not in container.format.name:
        return None
    if stream.duration is None or not stream.time_base:
        return None
    start = stream.start_time or 0
    return int(round(float((start + stream.duration) * stream.time_base) * sample_rate))


def iter_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, chunk_samples: int = 65536) -> Generator[np.ndarray, None, None]:
    """Yield consecutive mono float32 chunks [n] of ``path``'s first audio track at ``sample_rate`` Hz.

    Chunks hold ``chunk_samples`` samples except the last. Raises NoAudioTrackError when the
    file has no audio track and MediaError when it cannot be decoded.
    """
    import av

    path = Path(path)
    with open_input(path, "media") as container:
        stream = _audio_stream(container, path)
        limit = _recorded_length(container, stream, sample_rate)
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        pending: list[np.ndarray] = []
        pending_count = 0
        emitted = 0
        started = False

        def take(block: np.ndarray) -> Iterator[np.ndarray]:
            nonlocal pending_count, emitted
            if not np.isfinite(block).all():
                at = (emitted + pending_count + int(np.argmin(np.isfinite(block)))) / sample_rate
                raise MediaError(f"{path}: the audio has NaN or infinite samples (first at {at:.2f} s); "
                                 "re-export it as 16-bit PCM or clean the file", reason="non_finite")
            if limit is not None:
                block = block[: max(limit - emitted - pending_count, 0)]
            if block.size:
                pending.append(block)
                pending_count += block.size
            while pending_count >= chunk_samples:
                joined = np.concatenate(pending)
                yield joined[:chunk_samples]
                emitted += chunk_samples
                rest = joined[chunk_samples:]
                pending[:] = [rest] if rest.size else []
                pending_count = rest.size

        try:
            for frame in container.decode(stream):
                if not started:
                    started = True
                    offset = int(round((frame.time or 0.0) * sample_rate))
                    if offset > MAX_LEADING_SECONDS * sample_rate:  # would pad with that many zeros at once
                        raise MediaError(f"{path}: the audio track starts at {frame.time:.2f} s; its timestamps are "
                                         "damaged (re-encode the file)", reason="bad_timestamps")
                    skip = max(-offset, 0)
                    yield from take(np.zeros(max(offset, 0), dtype=np.float32))
                for out in resampler.resample(frame):
                    block = out.to_ndarray().astype(np.float32, copy=False).mean(axis=0)
                    if skip:
                        cut = min(skip, block.size)
                        block, skip = block[cut:], skip - cut
                    yield from take(block)
            for out in resampler.resample(None):
                yield from take(out.to_ndarray().astype(np.float32, copy=False).mean(axis=0))
        except (av.error.FFmpegError, ValueError) as error:  # ValueError: a frame's format changed mid-stream
            raise MediaError(f"{path}: audio cannot be decoded ({error})") from None
        if pending_count:
            yield np.concatenate(pending)


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole audio track of ``path`` as mono float32 [s] at ``sample_rate`` Hz (see module notes).

    A zero-length track gives an empty array; a file without an audio track raises NoAudioTrackError.
    """
    chunks = list(iter_audio(path, sample_rate))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float [s] (or [s, channels]) to a .wav (16-bit PCM) or .flac file, atomically."""
    import soundfile

    from styletalker_core.io.atomic import atomic_path

    path = Path(path)
    formats = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}
    if path.suffix.lower() not in formats:
        raise MediaError(f"{path}: write_audio writes .wav or .flac", reason="unsupported")
    file_format, subtype = formats[path.suffix.lower()]
    with atomic_path(path) as temporary:
        soundfile.write(str(temporary), np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), sample_rate, format=file_format, subtype=subtype)
