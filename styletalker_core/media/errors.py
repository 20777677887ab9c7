"""Errors raised when a media file cannot be used. Each names the file and the reason."""

from __future__ import annotations

from styletalker_core.errors import StyleTalkerError


class MediaError(StyleTalkerError):
    """A media file that cannot be read or written (corrupt, unsupported, missing).

    ``reason`` is a short machine-readable tag (``"unreadable"``, ``"no_audio_track"``,
    ``"no_video_track"``, ``"empty_audio"``, ...) that reports can group by.
    """

    reason = "unreadable"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class NoAudioTrackError(MediaError):
    """The file has no audio stream."""

    reason = "no_audio_track"


class NoVideoTrackError(MediaError):
    """The file has no video stream."""

    reason = "no_video_track"
