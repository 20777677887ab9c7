"""The speech of a sampling job, read from its file as generation needs it.

The file is decoded and resampled to the model's rate in chunks (``iter_audio``: FFmpeg's
resampler keeps its filter state across chunks, so the samples equal a whole-file read).
Generation pulls chunks through :meth:`SpeechReader.chunks`; each chunk is also queued for
the muxer, which takes the samples under the frames it writes (:meth:`SpeechReader.take`).
Only the samples read ahead of the written frames are held, never the whole recording.
Bad samples (NaN or infinite) are found in the chunk that holds them, and a read error
names the file as ``audio: PATH: ...``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from styletalker_core.media import MediaError, iter_audio, probe_audio
from styletalker_core.sample.faces import InputError, media_error

MIN_AUDIO_SECONDS = 0.2  # five video frames: the shortest window the lip-sync model reads
CHUNK_SAMPLES = 65536  # samples per decoded chunk (4.1 s at 16 kHz)


class SpeechReader:
    """Reads ``path`` as mono float32 at ``sample_rate`` in chunks of ``chunk_samples`` (default CHUNK_SAMPLES).

    :meth:`open` reads the first chunk (and refuses audio shorter than MIN_AUDIO_SECONDS);
    :attr:`seconds` is the wall time spent decoding so far.
    """

    def __init__(self, path: Path, sample_rate: int, chunk_samples: int | None = None) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._source = iter_audio(self.path, sample_rate, chunk_samples or CHUNK_SAMPLES)
        self._unread: deque[np.ndarray] = deque()  # read by open(), not yet handed to generation
        self._queued: deque[np.ndarray] = deque()  # handed to generation, not yet muxed
        self._queued_offset = 0  # samples of _queued[0] already muxed
        self.received = 0
        self.ended = False
        self.seconds = 0.0

    def _next(self) -> np.ndarray | None:
        if self.ended:
            return None
        started = time.perf_counter()
        try:
            chunk = next(self._source, None)
        except MediaError as error:
            raise media_error("audio", error) from None
        finally:
            self.seconds += time.perf_counter() - started
        if chunk is None:
            self.ended = True
            return None
        self.received += chunk.size
        return chunk

    def open(self) -> None:
        """Read until MIN_AUDIO_SECONDS of audio (or the end); refuse a shorter recording."""
        needed = round(MIN_AUDIO_SECONDS * self.sample_rate)
        while self.received < needed:
            chunk = self._next()
            if chunk is None:
                seconds = self.received / self.sample_rate
                raise InputError(f"audio: {self.path}: only {seconds:.2f} s long; "
                                 f"give at least {MIN_AUDIO_SECONDS} s of speech")
            self._unread.append(chunk)

    def chunks(self) -> Iterator[np.ndarray]:
        """The audio's consecutive chunks [n], each queued for :meth:`take` as it is handed out."""
        while True:
            chunk = self._unread.popleft() if self._unread else self._next()
            if chunk is None:
                return
            self._queued.append(chunk)
            yield chunk

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` samples handed to generation and not muxed yet (fewer at the end)."""
        pieces = []
        while count > 0 and self._queued:
            head = self._queued[0]
            piece = head[self._queued_offset: self._queued_offset + count]
            pieces.append(piece)
            count -= piece.size
            self._queued_offset += piece.size
            if self._queued_offset == head.size:
                self._queued.popleft()
                self._queued_offset = 0
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def drain(self) -> None:
        """Read the rest of the file without keeping it: a damaged or non-finite tail past the
        last frame (a motion video trims the output) is still refused, as a whole-file read would."""
        self._unread.clear()
        while self._next() is not None:
            pass

    def close(self) -> None:
        """Close the file (when the job stops before reading it to the end)."""
        self._source.close()

    def estimated_samples(self) -> int | None:
        """The length the container states, at ``sample_rate`` (for progress display only)."""
        try:
            duration = probe_audio(self.path).duration
        except MediaError:
            return None
        return None if duration is None else int(duration * self.sample_rate)
