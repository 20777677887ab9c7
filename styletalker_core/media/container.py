"""Opening media files with PyAV, with one clear error for missing or unreadable files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styletalker_core.media.errors import MediaError


def open_input(path: Path, kind: str = "media") -> Any:
    """An open ``av`` input container for ``path``; MediaError ("missing" or "unreadable") otherwise.

    ``kind`` names the expected content in the message ("video", "audio", "media").
    """
    import av

    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a {kind} file; give the path of one file", reason="folder")
    if not path.is_file():
        raise MediaError(f"{path}: no such file", reason="missing")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes)", reason="empty_file")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as error:
        raise MediaError(f"{path}: not a readable {kind} file ({error})") from None


def stream_duration(container: Any, stream: Any) -> float | None:
    """Seconds of ``stream`` as recorded (the container's duration when the stream has none), or None."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None
